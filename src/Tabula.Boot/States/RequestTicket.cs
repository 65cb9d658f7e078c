using System.Diagnostics;
using System.Security.Cryptography;
using Tabula.Boot.Fetch;
using Tabula.Boot.Freshness;
using Tabula.Packaging;

namespace Tabula.Boot.States;

/// <summary>
/// The ticket stage (freshness design §3, §5), once per boot attempt before the fetch: a fresh 32-byte nonce, a
/// <see cref="TicketRequest"/> signed with the host configuration's <c>tabula_relay.identity_key</c> (zeroed at once),
/// POSTed to the trust policy's ticket_url over the pinned TLS of the fetch. The answer waits in
/// <see cref="BootContext.Round"/> until the package has verified (<see cref="CheckFreshness"/>). No ticket under a
/// required policy ends the round here (nothing is downloaded that could not boot); under an optional one the boot goes on.
/// </summary>
internal sealed class RequestTicket : BootState
{
    public override string Name => "ticket";

    public override Transition Run(BootContext context)
    {
        var clock = Stopwatch.StartNew();
        var configuration = context.Configuration!;
        var policy = configuration.Trust.Policy.Freshness!;
        context.Round?.Dispose();
        context.Round = null;

        byte[] nonce = RandomNumberGenerator.GetBytes(BootTicketPayload.NonceSize);
        string? machineId = null;
        byte[]? ticket = null;
        string? unavailable;
        BootTicketException? notATicket = null;
        byte[]? identity = null;
        try
        {
            identity = MachineIdentity.PrivateKeyFromHostConfig(configuration.HostConfigJson);
            var request = TicketRequest.Create(identity, nonce, policy.MachineClass);
            CryptographicOperations.ZeroMemory(identity);
            machineId = request.MachineId;
            byte[] body = request.ToJson();
            request.Clear();
            try
            {
                var answer = context.Http is { } http
                    ? new TicketClient(http, context.Options, context.Environment.Sleep, context.Tls).Post(policy.TicketUrl, body)
                    : new TicketAnswer(null, "no HTTP client (no network)");
                (ticket, unavailable, notATicket) = (answer.Ticket, answer.Unavailable, answer.NotATicket);
            }
            finally { CryptographicOperations.ZeroMemory(body); }
        }
        catch (PackageFormatException e)
        {
            unavailable = $"no identity key to ask with: {e.Message}";
        }
        finally
        {
            if (identity is not null)
                CryptographicOperations.ZeroMemory(identity);
        }
        var round = new FreshnessRound(nonce, machineId) { Ticket = ticket, Unavailable = unavailable, NotATicket = notATicket };
        string url = Urls.Redact(policy.TicketUrl);

        if (notATicket is not null)   // refused as ticket-malformed after the package verified (CheckFreshness), in either mode
            context.Log.StageDone(Name, clock.Elapsed,
                $"url={url} machine={machineId} ticket=malformed error={notATicket.Reason} detail=\"{FreshnessDecision.OneLine(notATicket.Message)}\"");
        else if (ticket is null)
        {
            context.Log.StageDone(Name, clock.Elapsed, $"url={url} machine={machineId ?? "none"} ticket=none detail=\"{FreshnessDecision.OneLine(unavailable ?? "")}\"");
            if (policy.Mode == FreshnessMode.Required)
            {
                round.Dispose();
                string detail = $"detail=\"{FreshnessDecision.OneLine(unavailable ?? "")}\" mode=required";
                context.Log.FreshnessRefused(FreshnessRefusal.TicketUnavailable, detail);
                return Transition.To(new Recover(new BootFailure(Name, FailureReason.FreshnessRefused,
                    $"{FreshnessRefusal.TicketUnavailable.Name()}: {unavailable}", url), new FetchPackage(0)));
            }
        }
        else
            context.Log.StageDone(Name, clock.Elapsed, $"url={url} machine={machineId} bytes={ticket.Length}");
        context.Round = round;
        return Transition.To(new FetchPackage(0));
    }
}
