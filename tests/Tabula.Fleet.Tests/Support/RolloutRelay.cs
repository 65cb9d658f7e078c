using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using Tabula.Fleet.Api;
using Tabula.Fleet.Protocol;

namespace Tabula.Fleet.Tests.Support;

/// <summary>
/// A relay as a rollout sees it, over the real /relay/v1 protocol: enrolled and deployed on a package, it long-polls its reboot
/// command, checks it as the agent does (<see cref="RebootCommandGuard"/>, the key learned at enrollment), answers, and "reboots":
/// a new boot enrolls again (new WireGuard key, the package the test says stboot booted) and reports the head revision applied.
/// </summary>
public sealed class RolloutRelay(FleetHost host, string enrollmentToken, string operatorToken, string machineClass)
{
    /// <summary>The controller (instance) this relay talks to; a test moves it to another instance or a restarted controller.</summary>
    public FleetHost Host { get; set; } = host;

    /// <summary>The digest the last boot ticket named (what stboot would have had to boot).</summary>
    public string? TicketDigest { get; private set; }

    public TestRelay Relay { get; } = new();
    public string MachineId => Relay.MachineId;
    public RebootCommandGuard Guard { get; private set; } = new();
    public string Hostname { get; } = "r-" + Guid.NewGuid().ToString("N")[..10];
    public byte[] CommandKey { get; private set; } = [];

    /// <summary>Enrolls (a boot) on <paramref name="digest"/>; a new boot has a new guard, as the agent's RAM is new.</summary>
    public async Task EnrollAsync(string digest)
    {
        // stboot first: a boot ticket for this boot (it names the package the controller chose for this machine), handed over
        // to the agent, which reports it at enrollment.
        byte[] nonce = System.Security.Cryptography.RandomNumberGenerator.GetBytes(32);
        using var ticketResponse = await Host.Client().PostAsync(BootEndpoints.TicketPath, new ByteArrayContent(
            Tabula.Packaging.TicketRequest.Create(Relay.IdentityPrivate, nonce, machineClass).ToJson()) { Headers = { ContentType = new("application/json") } });
        ticketResponse.EnsureSuccessStatusCode();
        byte[] ticket = await ticketResponse.Content.ReadAsByteArrayAsync();
        TicketDigest = Tabula.Packaging.BootTicket.Parse(ticket).Payload.PackageSha256.Hex;
        var freshness = new FreshnessReport(TicketDigest == digest, TicketDigest == digest ? null : "ticket-digest", Convert.ToBase64String(ticket),
            0, machineClass);
        var enrolled = await Relay.EnrollAsync(Host.Client(), enrollmentToken, digest, freshness);
        Guard = new RebootCommandGuard();
        CommandKey = Convert.FromBase64String(enrolled.CommandKey!);
        Assert.True(Guard.Learn(CommandKey, null));
    }

    public async Task<RolloutRelay> DeployAsync(string digest, string country = "de", string city = "ber")
    {
        await EnrollAsync(digest);
        var placement = new ProvisionRequest(Hostname, country, "Country", city, "City", "hetzner", false, "192.0.2.10", null, 51820, 100, true, null,
            Latitude: 52.5, Longitude: 13.4);
        var op = Host.Client(operatorToken);
        (await op.PostAsJsonAsync($"/api/v1/machines/{MachineId}/provision", placement, FleetJson.Default.ProvisionRequest)).EnsureSuccessStatusCode();
        (await op.PostAsJsonAsync($"/api/v1/machines/{MachineId}/deploy", new ReasonRequest("test"), FleetJson.Default.ReasonRequest)).EnsureSuccessStatusCode();
        await ReportAppliedAsync();
        return this;
    }

    /// <summary>GET /relay/v1/command?after=N: the command's bytes, or null on 204.</summary>
    public async Task<byte[]?> PollAsync(long after = 0, int? wait = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/relay/v1/command?after={after}" + (wait is { } w ? $"&wait={w}" : ""));
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", Relay.RelayToken);
        using var response = await Host.Client().SendAsync(request);
        if (response.StatusCode == HttpStatusCode.NoContent) return null;
        response.EnsureSuccessStatusCode();
        var body = await response.Content.ReadFromJsonAsync(FleetJson.Default.CommandResponse);
        return Convert.FromBase64String(body!.Command);
    }

    /// <summary>Waits for a command (long polls), checks and accepts it as the agent does, and answers the controller.</summary>
    public async Task<(RebootCommandPayload Payload, byte[] Bytes)> AcceptCommandAsync(TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(30));
        while (DateTime.UtcNow < deadline)
        {
            if (await PollAsync(Guard.LastSequence) is { } bytes)
            {
                var payload = Guard.Check(bytes, MachineId, Relay.WireGuardKey, DateTimeOffset.UtcNow);
                Guard.Accept(payload);
                await AckAsync(payload.Sequence, accepted: true, null);
                return (payload, bytes);
            }
        }
        throw new TimeoutException($"no reboot command for {Hostname}");
    }

    public async Task<HttpResponseMessage> AckAsync(long sequence, bool accepted, string? refusal)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/relay/v1/command/ack")
        {
            Content = JsonContent.Create(new CommandAckRequest(sequence, accepted, refusal), FleetJson.Default.CommandAckRequest),
        };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", Relay.RelayToken);
        return await Host.Client().SendAsync(request);
    }

    /// <summary>The new boot: enrolls on <paramref name="bootedDigest"/> and reports the peer set applied (it serves).</summary>
    public async Task RebootIntoAsync(string bootedDigest, bool serve = true)
    {
        await EnrollAsync(bootedDigest);
        if (serve) await ReportAppliedAsync();
    }

    public async Task ReportAppliedAsync()
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/relay/v1/applied")
        {
            Content = JsonContent.Create(new AppliedRequest(Host.Hub.Head), FleetJson.Default.AppliedRequest),
        };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", Relay.RelayToken);
        using var response = await Host.Client().SendAsync(request);
        response.EnsureSuccessStatusCode();
    }
}
