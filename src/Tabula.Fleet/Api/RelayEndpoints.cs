using System.Buffers;
using System.IO.Pipelines;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Tabula.Fleet.Core;

namespace Tabula.Fleet.Api;

/// <summary>/relay/v1: what relay agents call — enrollment, the peer stream, applied-revision reports.</summary>
public static class RelayEndpoints
{
    public static void MapRelays(this IEndpointRouteBuilder app)
    {
        var relay = app.MapGroup("/relay/v1");
        relay.MapPost("/enroll/nonce", async (HttpContext http, FleetCore core) =>
        {
            var (nonce, expires) = await core.NewEnrollmentNonceAsync(Auth.Bearer(http), http.RequestAborted);
            return TypedResults.Ok(new NonceResponse(Convert.ToHexStringLower(nonce), expires));
        });
        relay.MapPost("/enroll", async (EnrollBody body, HttpContext http, FleetCore core) =>
        {
            var request = new FleetCore.EnrollRequest(
                Base64(body.IdentityKey, "identity_key"), WireGuardKey.Parse(body.WireguardPublicKey, "wireguard_public_key"),
                body.PackageDigest ?? "", Hex(body.Nonce, "nonce"), Base64(body.Signature, "signature"));
            var (machine, token) = await core.EnrollAsync(Auth.Bearer(http), request, http.RequestAborted);
            return TypedResults.Ok(new EnrollResponse(machine.Id, machine.State.Name(), token));
        });
        relay.MapGet("/peers", Peers);
        relay.MapPost("/applied", async (AppliedRequest body, HttpContext http, FleetCore core) =>
        {
            var machine = await Auth.RelayAsync(http, core);
            await core.ReportAppliedAsync(machine, body.Revision, http.RequestAborted);
            return TypedResults.NoContent();
        });
        // The agent polls this while it waits for staff, then reads its listen port and gateway addresses.
        relay.MapGet("/config", async (HttpContext http, FleetCore core) =>
        {
            var machine = await Auth.RelayAsync(http, core);
            return TypedResults.Ok(new RelayConfigView(machine.Id, machine.State.Name(), machine.Placement?.Port ?? 51820,
                core.Pool.Ipv4GatewayCidr, core.Pool.Ipv6GatewayCidr));
        });
        relay.MapPost("/health", async (HealthReport body, HttpContext http, FleetCore core, RelayHealthBoard board) =>
        {
            var machine = await Auth.RelayAsync(http, core);
            board.Report(machine.Id, body.Peers, body.HandshakesLastMinute, body.RxBytes, body.TxBytes, body.AppliedRevision);
            return TypedResults.NoContent();
        });
    }

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
    private static async Task Peers(long? from, HttpContext http, FleetCore core, PeerStream stream)
    {
        var machine = await Auth.RelayAsync(http, core);
        if (machine.State is MachineState.Awaiting or MachineState.Retired)
            throw new FleetException(FleetError.Forbidden, $"this machine is {machine.State.Name()}; peers go to provisioned machines");
        http.Response.ContentType = "application/x-ndjson";
        http.Response.Headers.CacheControl = "no-store";
        http.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpResponseBodyFeature>()?.DisableBuffering();
        try
        {
            await stream.RunAsync(machine, from ?? 0, new NdjsonPeerWriter(http.Response.BodyWriter), http.RequestAborted);
        }
        catch (OperationCanceledException) when (http.RequestAborted.IsCancellationRequested) { }
    }
}

/// <summary>Writes peer stream lines straight into Kestrel's response pipe (no per-line allocation of strings).</summary>
internal sealed class NdjsonPeerWriter(PipeWriter pipe) : IPeerStreamWriter
{
    private readonly Utf8JsonWriter json = new(pipe, new JsonWriterOptions { SkipValidation = true });
    private long unflushed;

    public long Unflushed => unflushed;

    private void EndLine()
    {
        json.WriteEndObject();
        json.Flush();
        unflushed += json.BytesCommitted + 1;
        json.Reset(pipe);
        pipe.GetSpan(1)[0] = (byte)'\n';
        pipe.Advance(1);
    }

    public void SnapshotBegin(long revision, long count)
    {
        json.WriteStartObject();
        json.WriteString("type"u8, "snapshot"u8);
        json.WriteNumber("revision"u8, revision);
        json.WriteNumber("peers"u8, count);
        EndLine();
    }

    /// <summary>
    /// The snapshot's hot path (one line per customer key, a million in a large fleet): formatted by hand
    /// into the pipe's memory. Safe without escaping: base64 and IP address text are plain ASCII.
    /// </summary>
    public void Peer(byte[] publicKey, string ipv4, string ipv6)
    {
        ReadOnlySpan<byte> head = "{\"type\":\"peer\",\"public_key\":\""u8, middle = "\",\"allowed_ips\":[\""u8,
            v4End = "/32\",\""u8, tail = "/128\"]}\n"u8;
        int length = head.Length + System.Buffers.Text.Base64.GetMaxEncodedToUtf8Length(publicKey.Length) + middle.Length + ipv4.Length + v4End.Length + ipv6.Length + tail.Length;
        Span<byte> line = pipe.GetSpan(length);
        int at = 0;
        head.CopyTo(line); at += head.Length;
        System.Buffers.Text.Base64.EncodeToUtf8(publicKey, line[at..], out _, out int written); at += written;
        middle.CopyTo(line[at..]); at += middle.Length;
        at += System.Text.Encoding.ASCII.GetBytes(ipv4, line[at..]);
        v4End.CopyTo(line[at..]); at += v4End.Length;
        at += System.Text.Encoding.ASCII.GetBytes(ipv6, line[at..]);
        tail.CopyTo(line[at..]); at += tail.Length;
        pipe.Advance(at);
        unflushed += at;
    }

    private void WritePeer(byte[] publicKey, string ipv4, string ipv6)
    {
        json.WriteBase64String("public_key"u8, publicKey);
        json.WriteStartArray("allowed_ips"u8);
        json.WriteStringValue(ipv4 + "/32");
        json.WriteStringValue(ipv6 + "/128");
        json.WriteEndArray();
    }

    public void SnapshotEnd(long revision, byte[] setHash)
    {
        json.WriteStartObject();
        json.WriteString("type"u8, "snapshot_end"u8);
        json.WriteNumber("revision"u8, revision);
        json.WriteString("hash"u8, Convert.ToHexStringLower(setHash));
        EndLine();
    }

    public void Change(PeerChange change)
    {
        json.WriteStartObject();
        json.WriteString("type"u8, change.Kind == PeerChangeKind.Add ? "add"u8 : "remove"u8);
        json.WriteNumber("revision"u8, change.Revision);
        WritePeer(change.PublicKey, change.Ipv4, change.Ipv6);
        json.WriteString("hash"u8, Convert.ToHexStringLower(change.SetHash));
        EndLine();
    }

    public void Heartbeat(long revision)
    {
        json.WriteStartObject();
        json.WriteString("type"u8, "heartbeat"u8);
        json.WriteNumber("revision"u8, revision);
        EndLine();
    }

    public async ValueTask FlushAsync(CancellationToken ct)
    {
        unflushed = 0;
        var result = await pipe.FlushAsync(ct);
        if (result.IsCanceled || result.IsCompleted) throw new OperationCanceledException(ct);
    }
}
