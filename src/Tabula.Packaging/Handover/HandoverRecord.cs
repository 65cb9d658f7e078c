using System.Buffers;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text.Json;
using Tabula.Packaging.Cpio;

namespace Tabula.Packaging;

/// <summary>
/// What stboot hands to the next OS (<see cref="InitramfsLayout.Handover"/>), the one writer and reader of
/// handover.json. stboot writes it into a cpio archive appended after the verified initramfs, whose bytes stay
/// untouched (<see cref="AppendTo"/>); the next OS (the relay agent, the end-to-end tests' marker) reads it back.
/// <code>
/// {
///   "version": 1,
///   "ospkg_sha256": "&lt;64 lowercase hex digits: SHA-256 of the verified archive&gt;",
///   "ospkg_source": "network" | "initramfs",
///   "descriptor_url": "&lt;URL without userinfo&gt;" (network only),
///   "host_config_source": "/etc/host_configuration.json" | "efivar:STHostConfig",
///   "host_config": { … the host configuration JSON exactly as read … },
///   "freshness": {"fresh": bool, "reason": "ticket-unavailable"|…|null, "ticket": base64(ticket bytes)|null,
///                 "release": N, "machine_class": "relay"|null}   (only when the trust policy has tabula_freshness)
///   "measured_boot": {"measured": bool, "detail": "…"|null, "event_log_sha256": "&lt;hex&gt;"|null}   (stboot since issue 19)
///   "platform": {"firmware": "uefi"|"bios", "secure_boot": bool|null, "lockdown": "none"|"integrity"|"confidentiality"|null}   (stboot since issue 20)
/// }
/// </code>
/// With <c>measured_boot.event_log_sha256</c>, the archive also holds the event log at <see cref="InitramfsLayout.EventLog"/>
/// (binary; <see cref="HandoverMeasurement.EventLog"/>), whose SHA-256 that is.
/// <code>
/// </code>
/// The host configuration may carry secrets (Basic-auth credentials in URLs, a relay's identity key), so the file is
/// mode 0600 and <see cref="HostConfigJson"/> should be zeroed by whoever is done with it (<see cref="Clear"/>).
/// </summary>
/// <param name="OsPackageSha256">The digest of the archive stboot verified and booted.</param>
/// <param name="Source">Where stboot got the package.</param>
/// <param name="DescriptorUrl">The descriptor's URL with userinfo removed (network only), else null.</param>
/// <param name="HostConfigSource">Where the host configuration came from: a path or <c>efivar:STHostConfig</c>.</param>
/// <param name="HostConfigJson">The host configuration as UTF-8 JSON (an object).</param>
public sealed record HandoverRecord(Sha256Digest OsPackageSha256, FetchMethod Source, string? DescriptorUrl,
    string HostConfigSource, byte[] HostConfigJson)
{
    /// <summary>What stboot decided about freshness (issue 16), or null when its trust policy has no freshness.</summary>
    public HandoverFreshness? Freshness { get; init; }

    /// <summary>What stboot measured (issue 19), or null (a stboot before measured boot).</summary>
    public HandoverMeasurement? Measurement { get; init; }

    /// <summary>Firmware, Secure Boot and lockdown as stboot saw them (issue 20), or null (a stboot before that).</summary>
    public HandoverPlatform? Platform { get; init; }

    /// <summary>The only version written and read.</summary>
    public const int CurrentVersion = 1;

    const string What = "handover.json";
    const int MaxTextLength = 4096;   // descriptor_url, host_config_source: a URL or a path. Arbitrary limit, may be increased.

    /// <summary>Zeroes <see cref="HostConfigJson"/> (it may hold secrets).</summary>
    public void Clear() => CryptographicOperations.ZeroMemory(HostConfigJson);

    /// <summary>
    /// The JSON (indented, newline-terminated), keys in the documented order. Throws <see cref="ArgumentException"/>
    /// when the record could not be read back by <see cref="Parse"/> (host configuration not an object, too large).
    /// </summary>
    public byte[] ToJson()
    {
        if (HostConfigSource.Length is 0 or > MaxTextLength || DescriptorUrl is { Length: 0 or > MaxTextLength })
            throw new ArgumentException("host_config_source must be 1-4096 characters, descriptor_url 1-4096 or null");
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            writer.WriteStartObject();
            writer.WriteNumber("version", CurrentVersion);
            writer.WriteString("ospkg_sha256", OsPackageSha256.Hex);
            writer.WriteString("ospkg_source", Spell(Source));
            if (DescriptorUrl is not null)
                writer.WriteString("descriptor_url", DescriptorUrl);
            writer.WriteString("host_config_source", HostConfigSource);
            writer.WritePropertyName("host_config");
            try
            {
                // stmgr's sample format (a description, "---", then JSON) passes HostConfig.Parse, so it must pass here
                // too: stboot refusing it only at kexec would loop forever on a configuration every check accepted.
                var hostJson = Tabula.Packaging.HostConfig.JsonPart(HostConfigJson).Trim(" \t\r\n"u8);
                using var document = JsonDocument.Parse(hostJson.ToArray());
                if (document.RootElement.ValueKind != JsonValueKind.Object)
                    throw new ArgumentException("the host configuration is not a JSON object");
                // Raw, not re-serialized: the next OS reads the host configuration byte for byte as stboot read it.
                writer.WriteRawValue(hostJson, skipInputValidation: true);
            }
            catch (JsonException e)
            {
                throw new ArgumentException("the host configuration is not valid JSON", e);
            }
            if (Freshness is not null)
            {
                writer.WritePropertyName("freshness");
                Freshness.Write(writer);
            }
            if (Measurement is not null)
            {
                writer.WritePropertyName("measured_boot");
                Measurement.Write(writer);
            }
            if (Platform is not null)
            {
                writer.WritePropertyName("platform");
                Platform.Write(writer);
            }
            writer.WriteEndObject();
        }
        buffer.Write("\n"u8);
        byte[] json = buffer.WrittenSpan.ToArray();
        buffer.Clear();   // zeroes the writer's copy of the host configuration
        if (json.Length > Limits.MaxHandoverBytes)
        {
            CryptographicOperations.ZeroMemory(json);
            throw new ArgumentException($"the hand-over would be {json.Length} bytes, over the reader's limit of {Limits.MaxHandoverBytes}");
        }
        return json;
    }

    /// <summary>Parses and validates handover.json; bad input throws <see cref="PackageFormatException"/> naming the field.</summary>
    public static HandoverRecord Parse(ReadOnlySpan<byte> json)
    {
        using var document = JsonFields.ParseObject(json, Limits.MaxHandoverBytes, What);
        var fields = new JsonFields(document.RootElement, What);
        long version = fields.RequiredInteger("version");
        if (version != CurrentVersion)
            PackageFormatException.Throw(FormatError.UnsupportedVersion, $"{What}: version {version} is not supported (only {CurrentVersion})");
        var digest = Sha256Digest.Parse(fields.RequiredString("ospkg_sha256"), $"{What}: field \"ospkg_sha256\"");
        string source = fields.RequiredString("ospkg_source");
        var method = source switch
        {
            "network" => FetchMethod.Network,
            "initramfs" => FetchMethod.Initramfs,
            _ => fields.Missing<FetchMethod>("ospkg_source", "\"network\" or \"initramfs\""),
        };
        string? descriptorUrl = fields.OptionalString("descriptor_url");
        string hostConfigSource = fields.RequiredString("host_config_source");
        if (descriptorUrl is { Length: 0 or > MaxTextLength })
            fields.Invalid("descriptor_url", $"must be 1-{MaxTextLength} characters");
        if (hostConfigSource.Length is 0 or > MaxTextLength)
            fields.Invalid("host_config_source", $"must be 1-{MaxTextLength} characters");
        if (fields.Get("host_config") is not { ValueKind: JsonValueKind.Object } host)
            return fields.Missing<HandoverRecord>("host_config", "an object");
        var freshness = fields.Get("freshness") is { } f ? HandoverFreshness.Read(fields, f) : null;
        var measurement = fields.Get("measured_boot") is { } m ? HandoverMeasurement.Read(fields, m) : null;
        var platform = fields.Get("platform") is { } p ? HandoverPlatform.Read(fields, p) : null;
        // The raw bytes, not GetRawText: a string could not be zeroed afterwards.
        byte[] hostConfig = JsonMarshal.GetRawUtf8Value(host).ToArray();
        return new HandoverRecord(digest, method, descriptorUrl, hostConfigSource, hostConfig) { Freshness = freshness, Measurement = measurement, Platform = platform };
    }

    /// <summary>
    /// The uncompressed cpio archive holding the JSON at <see cref="InitramfsLayout.Handover"/> (mode 0600, with its
    /// directories) and, when stboot measured, the event log at <see cref="InitramfsLayout.EventLog"/> (0644: it holds
    /// no secret), ready to be appended after an initramfs.
    /// </summary>
    public byte[] ToArchive()
    {
        byte[] json = ToJson();
        try
        {
            var archive = new CpioArchive()
                .AddDirectory("etc")
                .AddDirectory(InitramfsLayout.TabulaDirectory)
                .AddFile(InitramfsLayout.Handover, json, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            if (Measurement?.EventLog is { } log)
                archive.AddFile(InitramfsLayout.EventLog, log, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
            return archive.ToArray();
        }
        finally
        {
            CryptographicOperations.ZeroMemory(json);
        }
    }

    /// <summary>
    /// Appends 0-3 zero bytes and <see cref="ToArchive"/> to <paramref name="initramfs"/> (positioned at its end first)
    /// and returns the new length. The kernel unpacks concatenated archives in order; an uncompressed newc member must
    /// start 4-byte aligned (init/initramfs.c checks <c>this_header &amp; 3</c>) and zero bytes between members are
    /// skipped, so the signed bytes before it stay untouched and still unpack.
    /// </summary>
    public long AppendTo(Stream initramfs)
    {
        ArgumentNullException.ThrowIfNull(initramfs);
        byte[] archive = ToArchive();
        try
        {
            long length = initramfs.Length;
            initramfs.Position = length;
            int padding = (int)((4 - length % 4) % 4);
            Span<byte> zeros = stackalloc byte[4];
            zeros.Clear();
            initramfs.Write(zeros[..padding]);
            initramfs.Write(archive);
            return length + padding + archive.Length;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(archive);
        }
    }

    static string Spell(FetchMethod method) => method switch
    {
        FetchMethod.Network => "network",
        FetchMethod.Initramfs => "initramfs",
        _ => throw new ArgumentOutOfRangeException(nameof(method)),
    };
}

/// <summary>
/// The hand-over's <c>freshness</c> object: whether stboot booted with a valid boot ticket, and if not why
/// (<see cref="FreshnessRefusal"/> name; only ticket-unavailable under an optional policy boots unfresh), the ticket
/// exactly as received (the relay reports it at enrollment, the controller checks it), and the manifest's release and class.
/// </summary>
/// <param name="Fresh">True when a ticket verified and named this archive.</param>
/// <param name="Reason">The refusal name when not fresh, else null.</param>
/// <param name="Ticket">The ticket bytes, or null when there was none.</param>
/// <param name="Release">The booted manifest's release (0: none).</param>
/// <param name="MachineClass">The booted manifest's class, or null.</param>
public sealed record HandoverFreshness(bool Fresh, string? Reason, byte[]? Ticket, long Release, string? MachineClass)
{
    internal void Write(Utf8JsonWriter writer)
    {
        if (Reason is not null && FreshnessRefusals.Parse(Reason) is null)
            throw new ArgumentException($"freshness reason \"{Reason}\" is not a refusal name");
        if (Ticket is { Length: > Limits.MaxBootTicketBytes })
            throw new ArgumentException("the ticket is over its limit");
        Releases.CheckReleaseOrNone(Release, nameof(Release));
        Releases.CheckClassOrNone(MachineClass, nameof(MachineClass));
        writer.WriteStartObject();
        writer.WriteBoolean("fresh", Fresh);
        if (Reason is null) writer.WriteNull("reason"); else writer.WriteString("reason", Reason);
        if (Ticket is null) writer.WriteNull("ticket"); else writer.WriteBase64String("ticket", Ticket);
        writer.WriteNumber("release", Release);
        if (MachineClass is null) writer.WriteNull("machine_class"); else writer.WriteString("machine_class", MachineClass);
        writer.WriteEndObject();
    }

    internal static HandoverFreshness Read(JsonFields parent, JsonElement value)
    {
        if (value.ValueKind != JsonValueKind.Object)
            return parent.Wrong<HandoverFreshness>("freshness", "an object", value);
        var fields = new JsonFields(value, "handover.json: freshness");
        bool fresh = fields.OptionalBool("fresh") ?? fields.Missing<bool>("fresh", "true or false");
        string? reason = fields.OptionalString("reason");
        if (reason is not null && FreshnessRefusals.Parse(reason) is null)
            fields.Invalid("reason", "is not a freshness refusal name");
        byte[]? ticket = null;
        if (fields.OptionalString("ticket") is { } text)
        {
            if (text.Length > (Limits.MaxBootTicketBytes + 2) / 3 * 4)
                fields.Invalid("ticket", $"is over {Limits.MaxBootTicketBytes} bytes");
            ticket = new byte[Limits.MaxBootTicketBytes];
            if (!Convert.TryFromBase64String(text, ticket, out int written))
                fields.Invalid("ticket", "is not base64");
            ticket = ticket[..written];
        }
        long release = fields.RequiredInteger("release");
        if (release != 0 && !Releases.IsValidRelease(release))
            fields.Invalid("release", $"must be 0-{Releases.MaxRelease}");
        string? machineClass = fields.OptionalString("machine_class");
        if (machineClass is not null && !Releases.IsValidMachineClass(machineClass))
            fields.Invalid("machine_class", $"must be 1-{Releases.MaxMachineClassLength} characters of [a-z0-9-]");
        return new HandoverFreshness(fresh, reason, ticket, release, machineClass);
    }

    /// <summary>Value equality (the ticket by content).</summary>
    public bool Equals(HandoverFreshness? other) =>
        other is not null && Fresh == other.Fresh && Reason == other.Reason && Release == other.Release && MachineClass == other.MachineClass
        && (Ticket is null ? other.Ticket is null : other.Ticket is not null && Ticket.AsSpan().SequenceEqual(other.Ticket));

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(Fresh, Reason, Release, MachineClass);
}

/// <summary>
/// The hand-over's <c>measured_boot</c> object (issue 19): whether every measurement reached the TPM, why not
/// (<c>no TPM</c>, a TPM error; only under an optional or absent <c>tabula_measured_boot</c>), and the SHA-256 of the
/// event log written beside handover.json (<see cref="InitramfsLayout.EventLog"/>): the events that did reach the TPM,
/// so it replays to the PCRs whatever happened. The log's bytes are <see cref="EventLog"/> when writing; a reader loads
/// the file and checks it with <see cref="Matches"/>.
/// </summary>
/// <param name="Measured">True when every measurement was extended.</param>
/// <param name="Detail">Why not, or null.</param>
/// <param name="EventLogSha256">The event log's SHA-256, or null when there is none (no TPM).</param>
public sealed record HandoverMeasurement(bool Measured, string? Detail, Sha256Digest? EventLogSha256)
{
    const int MaxDetailLength = 512;

    /// <summary>The event log's bytes to write beside the JSON (writer side), or null.</summary>
    public byte[]? EventLog { get; init; }

    /// <summary>The hand-over of <paramref name="eventLog"/> (null: none).</summary>
    public static HandoverMeasurement Of(bool measured, string? detail, byte[]? eventLog) =>
        new(measured, detail, eventLog is null ? null : Sha256Digest.Of(eventLog)) { EventLog = eventLog };

    /// <summary>True when <paramref name="eventLog"/> is the log this record names.</summary>
    public bool Matches(ReadOnlySpan<byte> eventLog) => EventLogSha256 is { } digest && Sha256Digest.Of(eventLog).Equals(digest);

    internal void Write(Utf8JsonWriter writer)
    {
        if (Detail is { Length: > MaxDetailLength })
            throw new ArgumentException($"measured_boot detail is over {MaxDetailLength} characters");
        if (EventLog is not null && (EventLogSha256 is not { } d || !Sha256Digest.Of(EventLog).Equals(d)))
            throw new ArgumentException("the event log's digest is not event_log_sha256");
        writer.WriteStartObject();
        writer.WriteBoolean("measured", Measured);
        if (Detail is null) writer.WriteNull("detail"); else writer.WriteString("detail", Detail);
        if (EventLogSha256 is null) writer.WriteNull("event_log_sha256"); else writer.WriteString("event_log_sha256", EventLogSha256.Value.Hex);
        writer.WriteEndObject();
    }

    internal static HandoverMeasurement Read(JsonFields parent, JsonElement value)
    {
        if (value.ValueKind != JsonValueKind.Object)
            return parent.Wrong<HandoverMeasurement>("measured_boot", "an object", value);
        var fields = new JsonFields(value, "handover.json: measured_boot");
        bool measured = fields.OptionalBool("measured") ?? fields.Missing<bool>("measured", "true or false");
        string? detail = fields.OptionalString("detail");
        if (detail is { Length: > MaxDetailLength })
            fields.Invalid("detail", $"is over {MaxDetailLength} characters");
        Sha256Digest? digest = fields.OptionalString("event_log_sha256") is { } hex
            ? Sha256Digest.Parse(hex, "handover.json: measured_boot: field \"event_log_sha256\"") : null;
        return new HandoverMeasurement(measured, detail, digest);
    }
}
