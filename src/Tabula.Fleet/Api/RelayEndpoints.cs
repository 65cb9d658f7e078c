using Tabula.Fleet.Protocol;
using System.IO.Pipelines;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Tabula.Fleet.Core;
using Tabula.Fleet.Storage;

namespace Tabula.Fleet.Api;

/// <summary>/relay/v1: what relay agents call — enrollment, the peer stream, applied-revision reports.</summary>
public static class RelayEndpoints
{
    public static void MapRelays(this IEndpointRouteBuilder app)
    {
        var relay = app.MapGroup(RelayRoutes.Prefix).RequireRateLimiting(RateLimits.Relay);
        // The body is optional: an agent with a TPM names its EK certificate and AK (issue 19) and gets the activation challenge.
        relay.MapPost(RelayRoutes.Nonce, async (HttpContext http, EnrollmentService enrollment) =>
        {
            AttestationKeys? keys = null;
            if (http.Request.ContentLength is > 0 || http.Request.Headers.TransferEncoding.Count > 0)
                keys = await http.Request.ReadFromJsonAsync(FleetJson.Default.AttestationKeys, http.RequestAborted);
            var (nonce, expires, challenge) = await enrollment.NewEnrollmentNonceAsync(Auth.Bearer(http), keys, http.RequestAborted);
            return TypedResults.Ok(new NonceResponse(Convert.ToHexStringLower(nonce), expires, challenge));
        }).RequireRateLimiting(RateLimits.Enrollment);
        relay.MapPost(RelayRoutes.Enroll, async (EnrollBody body, HttpContext http, EnrollmentService enrollment, Security.TicketKey ticketKey) =>
        {
            var request = new EnrollmentService.EnrollRequest(
                Base64(body.IdentityKey, "identity_key"), KeyInput.Parse(body.WireguardPublicKey, "wireguard_public_key"),
                body.PackageDigest ?? "", Hex(body.Nonce, "nonce"), Base64(body.Signature, "signature"), body.Freshness, body.Attestation);
            var (machine, token, attestation) = await enrollment.EnrollAttestedAsync(Auth.Bearer(http), request, http.RequestAborted);
            // command_key (issue 18): the key reboot commands are signed with, the ticket key's public half. attestation (issue 19):
            // the verdict on the relay's TPM evidence, with the AK certificate when it attested.
            return TypedResults.Ok(new EnrollResponse(machine.Id, machine.State.Name(), token, Convert.ToBase64String(ticketKey.PublicKey),
                new AttestationOutcome(attestation.Status.Name(), attestation.FailedStep, attestation.Detail,
                    attestation.AkCertificate is { } c ? Convert.ToBase64String(c) : null)));
        }).RequireRateLimiting(RateLimits.Enrollment);
        relay.MapGet(RelayRoutes.Peers, Peers);
        relay.MapPost(RelayRoutes.Applied, async (AppliedRequest body, HttpContext http, MachineService machines) =>
        {
            var machine = await Auth.RelayAsync(http, machines);
            await machines.ReportAppliedAsync(machine, body.Revision, http.RequestAborted);
            return TypedResults.NoContent();
        });
        // The agent polls this while it waits for staff, then reads its listen port and gateway addresses.
        // Egress: the placement's egress addresses if staff gave them, else its in-addresses (customers are NATed to them),
        // and the fleet's egress settings. The public relay list keeps the in-addresses (PublicEndpoints).
        relay.MapGet(RelayRoutes.Config, async (HttpContext http, MachineService machines, AddressPool pool, RelayEgressSettings egress) =>
        {
            var machine = await Auth.RelayAsync(http, machines);
            return TypedResults.Ok(new RelayConfigView(machine.Id, machine.State.Name(), machine.Placement?.Port ?? 51820,
                pool.Ipv4GatewayCidr, pool.Ipv6GatewayCidr, egress.Resolvers, egress.BlockedPrefixes,
                NullIfEmpty(machine.Placement?.EgressIpv4), machine.Placement?.EgressIpv6, egress.PrivateEndpoints));
        });
        relay.MapPost(RelayRoutes.Health, async (HealthReport body, HttpContext http, MachineService machines, RelayHealthBoard board, IStore store) =>
        {
            var machine = await Auth.RelayAsync(http, machines);
            board.Report(machine.Id, body);
            // Every instance's board (PostgreSQL; nothing on SQLite). A lost one is made good by the next report.
            try { await store.PublishAsync(board.Notification(machine.Id, body), http.RequestAborted); }
            catch (System.Data.Common.DbException) { }
            return TypedResults.NoContent();
        });
    }

    private static string? NullIfEmpty(string? text) => string.IsNullOrEmpty(text) ? null : text;

    private static byte[] Base64(string? text, string field)
    {
        try { return Convert.FromBase64String(text ?? throw new FormatException()); }
        catch (FormatException) { throw new FleetException(FleetError.InvalidInput, $"{field} must be base64"); }
    }

    private static byte[] Hex(string? text, string field)
    {
        try { return Convert.FromHexString(text ?? throw new FormatException()); }
        catch (FormatException) { throw new FleetException(FleetError.InvalidInput, $"{field} must be hex"); }
    }

    /// <summary>
    /// GET /relay/v1/peers?from=R: newline-delimited JSON, one object per line, for as long as the relay
    /// stays connected. See docs/fleet.md for the line types.
    /// </summary>
    private static async Task Peers(long? from, HttpContext http, MachineService machines, PeerStream stream)
    {
        var machine = await Auth.RelayAsync(http, machines);
        if (!PeerStream.MayStream(machine.State))
            throw new FleetException(FleetError.Forbidden, $"this machine is {machine.State.Name()}; peers go to provisioned machines");
        http.Response.ContentType = "application/x-ndjson";
        http.Response.Headers.CacheControl = "no-store";
        http.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpResponseBodyFeature>()?.DisableBuffering();
        try
        {
            await stream.RunAsync(machine, Security.Secrets.HashToken(Auth.Bearer(http)!), from ?? 0, new NdjsonPeerWriter(http.Response.BodyWriter), http.RequestAborted);
        }
        catch (OperationCanceledException) when (http.RequestAborted.IsCancellationRequested) { }
    }
}

/// <summary>
/// The peer stream into Kestrel's response pipe through the wire's one writer (<see cref="PeerLineWriter"/>), counting
/// what is not flushed yet for backpressure.
/// </summary>
internal sealed class NdjsonPeerWriter(PipeWriter pipe) : IPeerStreamWriter
{
    private readonly PeerLineWriter lines = new(pipe);
    private long unflushed;

    public long Unflushed => unflushed;

    public void SnapshotBegin(long revision, long count) => unflushed += lines.SnapshotBegin(revision, count);

    public void Peer(byte[] publicKey, string ipv4, string ipv6) => unflushed += lines.Peer(publicKey, ipv4, ipv6);

    public void SnapshotEnd(long revision, byte[] setHash) => unflushed += lines.SnapshotEnd(revision, setHash);

    public void Change(PeerChange change) =>
        unflushed += lines.Change(change.Kind == PeerChangeKind.Add, change.Revision, change.PublicKey, change.Ipv4, change.Ipv6, change.SetHash);

    public void Heartbeat(long revision) => unflushed += lines.Heartbeat(revision);

    public async ValueTask FlushAsync(CancellationToken ct)
    {
        unflushed = 0;
        var result = await pipe.FlushAsync(ct);
        if (result.IsCanceled || result.IsCompleted) throw new OperationCanceledException(ct);
    }
}
