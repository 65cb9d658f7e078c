using System.Buffers;
using System.Security.Cryptography;
using System.Text.Json;
using Tabula.Packaging.Crypto;

namespace Tabula.Fleet.Protocol;

/// <summary>
/// What a reboot command says (the signed payload; issue 18, rollouts):
/// <code>{"version": 1, "machine_id": "&lt;32 hex&gt;", "wireguard_public_key": base64(32), "sequence": N, "nonce": base64(16),
///  "target_sha256": "&lt;64 hex&gt;", "target_release": N, "drain_seconds": S, "rollout_id": N,
///  "issued_at": unix seconds, "expires_at": unix seconds}</code>
/// <c>wireguard_public_key</c> is the key the machine enrolled with in this boot (a new one at every boot), so a command
/// recorded in an earlier boot names another key and is refused after the reboot too; <c>sequence</c> grows by one with every
/// command the controller issues to this machine, and the agent accepts only a sequence above the last it accepted.
/// </summary>
public sealed record RebootCommandPayload(string MachineId, byte[] WireGuardPublicKey, long Sequence, byte[] Nonce, string TargetSha256,
    long TargetRelease, int DrainSeconds, long RolloutId, long IssuedAt, long ExpiresAt)
{
    /// <summary>The only payload version written and read.</summary>
    public const int CurrentVersion = 1;

    /// <summary>Nonce length in bytes.</summary>
    public const int NonceSize = 16;

    /// <summary>The longest drain a command may ask for (one day; arbitrary limit).</summary>
    public const int MaxDrainSeconds = 86_400;

    /// <summary>The payload JSON (compact, keys in the documented order); <see cref="ArgumentException"/> for what the reader refuses.</summary>
    public byte[] ToJson()
    {
        Check(MachineId, WireGuardPublicKey, Sequence, Nonce, TargetSha256, TargetRelease, DrainSeconds, RolloutId, IssuedAt, ExpiresAt,
            m => throw new ArgumentException(m));
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteNumber("version", CurrentVersion);
            writer.WriteString("machine_id", MachineId);
            writer.WriteBase64String("wireguard_public_key", WireGuardPublicKey);
            writer.WriteNumber("sequence", Sequence);
            writer.WriteBase64String("nonce", Nonce);
            writer.WriteString("target_sha256", TargetSha256);
            writer.WriteNumber("target_release", TargetRelease);
            writer.WriteNumber("drain_seconds", DrainSeconds);
            writer.WriteNumber("rollout_id", RolloutId);
            writer.WriteNumber("issued_at", IssuedAt);
            writer.WriteNumber("expires_at", ExpiresAt);
            writer.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>Parses payload JSON; throws <see cref="RebootCommandException"/> with <see cref="RebootRefusal.Malformed"/>.</summary>
    public static RebootCommandPayload Parse(ReadOnlySpan<byte> json)
    {
        try
        {
            using var document = JsonDocument.Parse(json.ToArray(), new JsonDocumentOptions { MaxDepth = 2 });
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw Malformed("the payload is not a JSON object");
            long version = Integer(root, "version");
            if (version != CurrentVersion) throw Malformed($"payload version {version} is not supported (only {CurrentVersion})");
            var payload = new RebootCommandPayload(Text(root, "machine_id"), Bytes(root, "wireguard_public_key"), Integer(root, "sequence"),
                Bytes(root, "nonce"), Text(root, "target_sha256"), Integer(root, "target_release"), (int)Math.Clamp(Integer(root, "drain_seconds"), -1, int.MaxValue),
                Integer(root, "rollout_id"), Integer(root, "issued_at"), Integer(root, "expires_at"));
            Check(payload.MachineId, payload.WireGuardPublicKey, payload.Sequence, payload.Nonce, payload.TargetSha256, payload.TargetRelease,
                payload.DrainSeconds, payload.RolloutId, payload.IssuedAt, payload.ExpiresAt, m => throw Malformed(m));
            return payload;
        }
        catch (JsonException e) { throw Malformed($"invalid JSON ({e.Message.Split('.')[0]})"); }
        catch (InvalidOperationException) { throw Malformed("a field has the wrong type"); }
        catch (FormatException) { throw Malformed("a field has the wrong form"); }
    }

    static void Check(string machineId, byte[] wireGuardKey, long sequence, byte[] nonce, string target, long release, int drain, long rolloutId,
        long issuedAt, long expiresAt, Action<string> fail)
    {
        if (machineId is not { Length: 32 } || !IsLowerHex(machineId)) fail("machine_id must be 32 lowercase hex digits");
        if (wireGuardKey is not { Length: Tabula.Fleet.Protocol.WireGuardPublicKey.Size }) fail("wireguard_public_key must be 32 bytes");
        if (sequence < 1) fail("sequence starts at 1");
        if (nonce is not { Length: NonceSize }) fail($"nonce must be {NonceSize} bytes");
        if (target is not { Length: 64 } || !IsLowerHex(target)) fail("target_sha256 must be 64 lowercase hex digits");
        if (release < 0) fail("target_release is not negative (0: none named)");
        if (drain is < 0 or > MaxDrainSeconds) fail($"drain_seconds is 0-{MaxDrainSeconds}");
        if (rolloutId < 1) fail("rollout_id starts at 1");
        if (issuedAt < 0 || expiresAt <= issuedAt) fail("expires_at must come after issued_at (unix seconds)");
    }

    static bool IsLowerHex(string s) => s.All(c => c is >= '0' and <= '9' or >= 'a' and <= 'f');

    static long Integer(JsonElement root, string name) =>
        root.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out long n) ? n
        : throw Malformed($"field \"{name}\" is missing or not an integer");

    static string Text(JsonElement root, string name) =>
        root.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString()! : throw Malformed($"field \"{name}\" is missing or not a string");

    static byte[] Bytes(JsonElement root, string name) =>
        root.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String && v.TryGetBytesFromBase64(out var b) ? b
        : throw Malformed($"field \"{name}\" is missing or not base64");

    static RebootCommandException Malformed(string detail) => new(RebootRefusal.Malformed, detail);
}

/// <summary>Why a relay refused a reboot command (names as they appear on its console and in its answer to the controller).</summary>
public enum RebootRefusal
{
    /// <summary>Not a reboot command: bad JSON, a missing field, bad base64, over the size limit, an unknown version.</summary>
    Malformed,
    /// <summary>No command key learned (the relay has not enrolled), or the signature does not verify with it.</summary>
    Signature,
    /// <summary>Issued to another machine id.</summary>
    Machine,
    /// <summary>Issued to another boot of this machine (another WireGuard key): recorded earlier and replayed.</summary>
    Boot,
    /// <summary>Past its expires_at (or issued too far in the relay's future).</summary>
    Expired,
    /// <summary>A sequence at or below the last accepted one, or a nonce seen before: replayed.</summary>
    Replayed,
}

/// <summary>A refused reboot command with its reason.</summary>
public sealed class RebootCommandException(RebootRefusal reason, string detail) : Exception($"{reason.Name()}: {detail}")
{
    public RebootRefusal Reason { get; } = reason;
    public string Detail { get; } = detail;
}

public static class RebootRefusalNames
{
    public static string Name(this RebootRefusal reason) => reason switch
    {
        RebootRefusal.Malformed => "malformed", RebootRefusal.Signature => "signature", RebootRefusal.Machine => "machine",
        RebootRefusal.Boot => "boot", RebootRefusal.Expired => "expired", RebootRefusal.Replayed => "replayed",
        _ => throw new ArgumentOutOfRangeException(nameof(reason)),
    };
}

/// <summary>
/// A reboot command: the controller's order to one boot of one relay to drain and reboot into stboot (issue 18), ≤ 4 KiB of JSON
/// <code>{"payload": base64(payload JSON bytes), "signature": base64(Ed25519(command key, "tabula-reboot-command-v1\n" || payload bytes))}</code>
/// The command key is the controller's ticket key (Security/TicketKey.cs, the one online signing key it has); the prefix
/// keeps a command from ever reading as a boot ticket (whose prefix is "tabula-boot-ticket-v1\n") and back. The relay learns
/// the public half at enrollment and checks it against the boot ticket stboot verified with its pinned ticket_root.pem
/// (<see cref="RebootCommandGuard"/>).
/// </summary>
public sealed class RebootCommand
{
    /// <summary>The largest command accepted.</summary>
    public const int MaxBytes = 4096;

    /// <summary>The domain separation prefix of the signed message.</summary>
    public static ReadOnlySpan<byte> SignaturePrefix => "tabula-reboot-command-v1\n"u8;

    readonly byte[] payloadBytes, signature;

    RebootCommand(RebootCommandPayload payload, byte[] payloadBytes, byte[] signature)
    {
        Payload = payload;
        this.payloadBytes = payloadBytes;
        this.signature = signature;
    }

    public RebootCommandPayload Payload { get; }

    /// <summary>The signed message: <see cref="SignaturePrefix"/> || payload bytes.</summary>
    public static byte[] Message(ReadOnlySpan<byte> payloadBytes) => SignedEnvelope.Message(SignaturePrefix, payloadBytes);

    /// <summary>A command's bytes: <paramref name="payload"/> signed with the 32-byte key seed.</summary>
    public static byte[] Sign(RebootCommandPayload payload, ReadOnlySpan<byte> privateKey)
    {
        ArgumentNullException.ThrowIfNull(payload);
        return SignedEnvelope.Sign(SignaturePrefix, payload.ToJson(), privateKey);
    }

    /// <summary>Parses a command and its payload; throws <see cref="RebootCommandException"/> (never anything else for bad input).</summary>
    public static RebootCommand Parse(ReadOnlySpan<byte> command)
    {
        if (command.Length > MaxBytes) throw new RebootCommandException(RebootRefusal.Malformed, $"{command.Length} bytes, over the limit of {MaxBytes}");
        byte[] payloadBytes, sig;
        try
        {
            using var document = JsonDocument.Parse(command.ToArray(), new JsonDocumentOptions { MaxDepth = 2 });
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object
                || !root.TryGetProperty("payload", out var p) || p.ValueKind != JsonValueKind.String || !p.TryGetBytesFromBase64(out payloadBytes!)
                || !root.TryGetProperty("signature", out var s) || s.ValueKind != JsonValueKind.String || !s.TryGetBytesFromBase64(out sig!))
                throw new RebootCommandException(RebootRefusal.Malformed, "not {\"payload\": base64, \"signature\": base64}");
        }
        catch (JsonException e) { throw new RebootCommandException(RebootRefusal.Malformed, $"invalid JSON ({e.Message.Split('.')[0]})"); }
        catch (InvalidOperationException) { throw new RebootCommandException(RebootRefusal.Malformed, "a field has the wrong type"); }
        if (sig.Length != Ed25519.SignatureSize) throw new RebootCommandException(RebootRefusal.Malformed, "the signature is not 64 bytes");
        return new RebootCommand(RebootCommandPayload.Parse(payloadBytes), payloadBytes, sig);
    }

    /// <summary>True iff signed by <paramref name="commandKey"/> (32-byte Ed25519 public key).</summary>
    public bool VerifySignature(ReadOnlySpan<byte> commandKey) =>
        SignedEnvelope.Verify(SignaturePrefix, payloadBytes, signature, commandKey);
}

/// <summary>
/// The relay's side of reboot commands: the key it trusts, the boot it is in, and what it accepted, so a command is taken
/// at most once and only by the boot it was issued to. <see cref="Check"/> decides; <see cref="Accept"/> records.
/// Order of checks: form, signature, machine, boot (WireGuard key), expiry, sequence and nonce.
/// </summary>
public sealed class RebootCommandGuard
{
    /// <summary>How far a command's issued_at may lie in the relay's future (clock skew; arbitrary).</summary>
    public static readonly TimeSpan MaxClockSkew = TimeSpan.FromMinutes(5);

    readonly object gate = new();
    readonly HashSet<string> nonces = new(StringComparer.Ordinal);
    byte[]? key;

    /// <summary>The highest sequence accepted in this boot (0: none yet).</summary>
    public long LastSequence { get; private set; }

    /// <summary>
    /// Learns the command key from an enrollment answer. When stboot handed over a boot ticket (freshness), the key must verify
    /// it: stboot checked that ticket with the ticket_root.pem pinned in its trust policy, so a controller (or a man in the
    /// middle holding its TLS key) cannot swap in a key of its own. Returns false (and learns nothing) when it does not.
    /// </summary>
    public bool Learn(byte[]? commandKey, Tabula.Packaging.BootTicket? bootTicket)
    {
        if (commandKey is not { Length: Ed25519.PublicKeySize }) return false;
        if (bootTicket is not null && !bootTicket.VerifySignature(commandKey)) return false;
        lock (gate) key = commandKey;
        return true;
    }

    /// <summary>Whether a command key is known.</summary>
    public bool HasKey { get { lock (gate) return key is not null; } }

    /// <summary>The command if this boot of <paramref name="machineId"/> (enrolled with <paramref name="wireGuardKey"/>) may act on it now.</summary>
    public RebootCommandPayload Check(ReadOnlySpan<byte> command, string machineId, ReadOnlySpan<byte> wireGuardKey, DateTimeOffset now)
    {
        var parsed = RebootCommand.Parse(command);
        var p = parsed.Payload;
        byte[]? trusted;
        lock (gate) trusted = key;
        if (trusted is null) throw new RebootCommandException(RebootRefusal.Signature, "no command key learned at enrollment");
        if (!parsed.VerifySignature(trusted)) throw new RebootCommandException(RebootRefusal.Signature, "not signed by the controller's command key");
        if (p.MachineId != machineId) throw new RebootCommandException(RebootRefusal.Machine, $"issued to machine {p.MachineId}");
        if (!CryptographicOperations.FixedTimeEquals(p.WireGuardPublicKey, wireGuardKey))
            throw new RebootCommandException(RebootRefusal.Boot, "issued to another boot of this machine (another WireGuard key)");
        long seconds = now.ToUnixTimeSeconds();
        if (seconds > p.ExpiresAt) throw new RebootCommandException(RebootRefusal.Expired, $"expired {seconds - p.ExpiresAt}s ago");
        if (p.IssuedAt > seconds + (long)MaxClockSkew.TotalSeconds)
            throw new RebootCommandException(RebootRefusal.Expired, $"issued {p.IssuedAt - seconds}s in the future");
        lock (gate)
        {
            if (p.Sequence <= LastSequence) throw new RebootCommandException(RebootRefusal.Replayed, $"sequence {p.Sequence} after {LastSequence}");
            if (nonces.Contains(Convert.ToBase64String(p.Nonce))) throw new RebootCommandException(RebootRefusal.Replayed, "nonce seen before");
        }
        return p;
    }

    /// <summary>Records <paramref name="payload"/> as accepted: its sequence and nonce are never accepted again in this boot.</summary>
    public void Accept(RebootCommandPayload payload)
    {
        lock (gate)
        {
            if (payload.Sequence <= LastSequence || !nonces.Add(Convert.ToBase64String(payload.Nonce)))
                throw new RebootCommandException(RebootRefusal.Replayed, $"sequence {payload.Sequence} after {LastSequence}");
            LastSequence = payload.Sequence;
        }
    }
}
