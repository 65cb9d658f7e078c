using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Tabula.Fleet.Api;
using Tabula.Fleet.Tests.Support;

namespace Tabula.Fleet.Tests;

/// <summary>
/// Staff CLI verbs given several controller instances (issue 18): the real `tabula` against two real instances over one
/// PostgreSQL database, one of them stopped, and a listener that answers every request with a given 5xx.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class CliFailoverTests(PostgresFleetFixture fleet) : IClassFixture<PostgresFleetFixture>
{
    private Task<ProcessOutput> Tabula(IReadOnlyDictionary<string, string>? environment, params string[] args) =>
        TabulaCli.RunAsync(args, environment: new Dictionary<string, string>(environment ?? new Dictionary<string, string>())
            { ["TABULA_FLEET_TOKEN"] = fleet.OperatorToken });

    private async Task<int> AccountsAsync() =>
        (int)await fleet.Host.Store.ReadAsync(tx => tx.CountAccountsAsync(), CancellationToken.None);

    [Fact]
    public async Task Verbs_fail_over_past_a_stopped_instance_and_a_5xx_and_never_repeat_a_write_an_instance_may_have_done()
    {
        if (!fleet.Available) return;
        var stopped = await FleetHost.StartAsync(fleet.Host.Database);
        string dead = stopped.Address.ToString();
        await stopped.DisposeAsync();   // nothing listens there any more: connection refused
        string live = fleet.Host.Address.ToString();
        using var failing = new FixedAnswer(HttpStatusCode.InternalServerError);
        using var unavailable = new FixedAnswer(HttpStatusCode.ServiceUnavailable);

        // A read: a stopped instance and a 500, then the live one (repeated --server and a comma list alike).
        var (exit, output, error) = await Tabula(null, "fleet", "machines", "list", "--json", "--server", dead, "--server", $"{failing.Url},{live}");
        Assert.True(exit == 0, error);
        JsonSerializer.Deserialize(output, FleetJson.Default.ListMachineView);
        Assert.True(failing.Requests >= 1);
        // From the environment too.
        (exit, _, error) = await Tabula(new Dictionary<string, string> { ["TABULA_FLEET_SERVER"] = $"{dead},{live}" }, "fleet", "machines", "list");
        Assert.True(exit == 0, error);

        // A write past a stopped instance (nothing was sent to it) and a 503 (the instance took nothing): one account.
        int before = await AccountsAsync();
        (exit, output, error) = await Tabula(null, "fleet", "customers", "create", "--json", "--server", $"{dead},{unavailable.Url},{live}");
        Assert.True(exit == 0, error);
        Assert.Matches("^[1-9][0-9]{15}$", JsonSerializer.Deserialize(output, FleetJson.Default.AccountView)!.Number);
        Assert.Equal(before + 1, await AccountsAsync());

        // A write that got a 500 may have committed there: it is not sent again, the refusal is the answer.
        int writes = failing.Requests;
        (exit, _, error) = await Tabula(null, "fleet", "customers", "create", "--server", $"{failing.Url},{live}");
        Assert.Equal(1, exit);
        Assert.Contains("fixed answer", error);   // the 500 instance's own refusal
        Assert.Equal(writes + 1, failing.Requests);
        Assert.Equal(before + 1, await AccountsAsync());

        // Every instance down: the last failure, exit 2.
        (exit, _, error) = await Tabula(null, "fleet", "machines", "list", "--server", dead);
        Assert.Equal(2, exit);
        Assert.Contains("tabula: error:", error);
        (exit, _, error) = await Tabula(null, "fleet", "machines", "list", "--server", "ftp://127.0.0.1");
        Assert.Equal(2, exit);
        Assert.Contains("--server must be an absolute http(s) URL", error);
    }

    /// <summary>A loopback HTTP/1.1 listener that answers every request with one status and closes.</summary>
    private sealed class FixedAnswer : IDisposable
    {
        private readonly TcpListener listener = new(IPAddress.Loopback, 0);
        private readonly CancellationTokenSource stop = new();
        private int requests;

        public FixedAnswer(HttpStatusCode status)
        {
            listener.Start();
            Url = $"http://127.0.0.1:{((IPEndPoint)listener.LocalEndpoint).Port}";
            _ = Task.Run(async () =>
            {
                while (!stop.IsCancellationRequested)
                {
                    try
                    {
                        using var socket = await listener.AcceptSocketAsync(stop.Token);
                        var buffer = new byte[16384];
                        var head = new StringBuilder();
                        while (!head.ToString().Contains("\r\n\r\n", StringComparison.Ordinal))
                        {
                            int n = await socket.ReceiveAsync(buffer, stop.Token);
                            if (n == 0) break;
                            head.Append(Encoding.ASCII.GetString(buffer, 0, n));
                        }
                        Interlocked.Increment(ref requests);
                        string body = """{"error":"unexpected","message":"fixed answer"}""";
                        await socket.SendAsync(Encoding.ASCII.GetBytes(
                            $"HTTP/1.1 {(int)status} {status}\r\nContent-Type: application/json\r\nContent-Length: {body.Length}\r\nConnection: close\r\n\r\n{body}"), stop.Token);
                        socket.Shutdown(SocketShutdown.Both);
                    }
                    catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException) { }
                }
            });
        }

        public string Url { get; }
        public int Requests => Volatile.Read(ref requests);

        public void Dispose()
        {
            stop.Cancel();
            listener.Stop();
            stop.Dispose();
        }
    }
}
