using System.Net;
using System.Net.Sockets;
using Tabula.Provisioning.Tests.Support;
using Tabula.Tls;

namespace Tabula.Provisioning.Tests;

/// <summary>
/// Issue 17, availability: one client holding slow downloads must not take every connection slot while machines boot.
/// The attack runs against the real server (Kestrel on the TLS transport, HTTPS, a pinned test CA) from two loopback
/// addresses: the attacker is 127.0.0.1, the booting machine 127.0.0.2.
/// </summary>
public sealed class ConnectionLimitTests
{
    const int GlobalLimit = 8;
    static readonly IPAddress Attacker = IPAddress.Parse("127.0.0.1"), Machine = IPAddress.Parse("127.0.0.2");

    /// <summary>A pinned HTTPS client whose one connection comes from <paramref name="source"/>.</summary>
    static HttpClient ClientFrom(TestServer server, IPAddress source) => PinnedHttp.Client(server.BaseAddress,
        PinnedTlsRoots.LoadPemFile(server.Tls.CaCertificate, TimeProvider.System), TimeSpan.FromSeconds(30), configure: handler =>
        {
            handler.MaxConnectionsPerServer = 1;
            handler.ConnectCallback = async (context, ct) =>
            {
                var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                try
                {
                    socket.Bind(new IPEndPoint(source, 0));
                    await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, context.DnsEndPoint.Port), ct);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            };
        });

    /// <summary>A connection the server closed: an HTTP failure, or the socket's own when the close beats the connect callback.</summary>
    static bool Closed(Exception e) => e is HttpRequestException or SocketException or IOException;

    /// <param name="perClient">Limits:MaxConnectionsPerClient. At the global limit it is no cap at all: the attack's control.</param>
    [Theory]
    [InlineData(4, true)]
    [InlineData(GlobalLimit, false)]
    public async Task One_client_holding_the_global_limits_worth_of_slow_downloads_leaves_room_for_a_booting_machine(int perClient, bool machineServed)
    {
        await using var server = await TestServer.StartAsync(o =>
        {
            o.Limits.MaxConcurrentConnections = GlobalLimit;
            o.Limits.MaxConnectionsPerClient = perClient;
        });
        var package = server.Packages.Create(trustedSigners: 2, size: 2_000_000);
        (await server.PublishAsync(package)).Dispose();
        string archive = $"/ospkg/{package.ArchiveSha256}.zip";

        // The attacker starts the global limit's worth of downloads, one connection each, and reads none of them.
        var attackers = Enumerable.Range(0, GlobalLimit).Select(_ => ClientFrom(server, Attacker)).ToList();
        var held = new List<HttpResponseMessage>();
        int refused = 0;
        try
        {
            foreach (var outcome in await Task.WhenAll(attackers.Select(async client =>
                     {
                         try { return await client.GetAsync(archive, HttpCompletionOption.ResponseHeadersRead); }
                         catch (Exception e) when (Closed(e)) { return null; }
                     })))
            {
                if (outcome is { StatusCode: HttpStatusCode.OK }) held.Add(outcome);
                else refused++;
            }
            // Capped: exactly its share. Uncapped: every slot (less one if the server has not yet seen the publisher's
            // connection close).
            if (machineServed)
                Assert.Equal((perClient, GlobalLimit - perClient), (held.Count, refused));
            else
                Assert.InRange(held.Count, GlobalLimit - 1, GlobalLimit);

            // A machine boots meanwhile: its descriptor and its whole archive, byte for byte, or (without a cap) nothing.
            using var machine = ClientFrom(server, Machine);
            if (machineServed)
            {
                Assert.NotEmpty(await machine.GetByteArrayAsync("/channels/stable.json"));
                Assert.Equal(package.Archive, await machine.GetByteArrayAsync(archive));
                // The server counts a refusal after it closes the connection, so the client can see the close first: poll (bounded).
                using var metrics = ClientFrom(server, Machine);
                string expected = $"tabula_provisioning_connections_refused_per_client_total {GlobalLimit - perClient}", text = "";
                for (var until = DateTime.UtcNow.AddSeconds(10); !text.Contains(expected) && DateTime.UtcNow < until; await Task.Delay(100))
                    text = await metrics.GetStringAsync("/metrics");
                Assert.Contains(expected, text);
            }
            else
            {
                var failure = await Record.ExceptionAsync(() => machine.GetByteArrayAsync("/channels/stable.json"));
                Assert.True(failure is not null && Closed(failure), $"expected the machine's connection closed, got {failure}");
            }
        }
        finally
        {
            foreach (var response in held) response.Dispose();
            foreach (var client in attackers) client.Dispose();
        }
    }
}
