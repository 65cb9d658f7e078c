using System.Buffers;
using System.Text.Json;

namespace Tabula.Packaging;

/// <summary>What started stboot's kernel.</summary>
public enum PlatformFirmware
{
    /// <summary>A BIOS (SeaBIOS, or a boot loader's -kernel): no /sys/firmware/efi.</summary>
    Bios,
    /// <summary>UEFI: /sys/firmware/efi exists.</summary>
    Uefi,
}

/// <summary>The kernel lockdown mode (/sys/kernel/security/lockdown; security/lockdown/lockdown.c).</summary>
public enum KernelLockdown
{
    /// <summary>"none": not locked down.</summary>
    None,
    /// <summary>"integrity": no changes to the running kernel (unsigned modules, kexec_load, unsigned kexec_file_load, /dev/mem…).</summary>
    Integrity,
    /// <summary>"confidentiality": integrity, and no reading of kernel memory either.</summary>
    Confidentiality,
}

/// <summary>
/// The hand-over's <c>platform</c> object (issue 20): what booted stboot and what its kernel enforces, as stboot saw it.
/// <code>
/// "platform": {"firmware": "uefi" | "bios", "secure_boot": true | false | null, "lockdown": "none" | "integrity" | "confidentiality" | null}
/// </code>
/// <c>secure_boot</c> is the firmware's <c>SecureBoot</c> variable (8be4df61-93ca-11d2-aa0d-00e098032b8c; null on BIOS
/// or when efivarfs could not be read); <c>lockdown</c> is the kernel's mode (null when securityfs or the lockdown LSM is
/// not there). The same object, compact, is the data of stboot's PCR 13 PlatformSecurity event (<see cref="ToMeasuredJson"/>).
/// </summary>
/// <param name="Firmware">What started stboot's kernel.</param>
/// <param name="SecureBoot">True when the firmware enforced Secure Boot, null when unknown.</param>
/// <param name="Lockdown">The kernel's lockdown mode, null when unknown.</param>
public sealed record HandoverPlatform(PlatformFirmware Firmware, bool? SecureBoot, KernelLockdown? Lockdown)
{
    /// <summary>The lockdown mode as the kernel spells it (and the hand-over writes it).</summary>
    public static string Spell(KernelLockdown lockdown) => lockdown switch
    {
        KernelLockdown.None => "none",
        KernelLockdown.Integrity => "integrity",
        KernelLockdown.Confidentiality => "confidentiality",
        _ => throw new ArgumentOutOfRangeException(nameof(lockdown)),
    };

    /// <summary>The firmware as the hand-over writes it: <c>uefi</c> or <c>bios</c>.</summary>
    public static string Spell(PlatformFirmware firmware) => firmware switch
    {
        PlatformFirmware.Bios => "bios",
        PlatformFirmware.Uefi => "uefi",
        _ => throw new ArgumentOutOfRangeException(nameof(firmware)),
    };

    /// <summary>Secure Boot for people and console lines: <c>on</c>, <c>off</c> or <c>unknown</c>.</summary>
    public string SecureBootWord => SecureBoot switch { true => "on", false => "off", null => "unknown" };

    /// <summary>The lockdown mode as the kernel spells it, or <c>unknown</c>.</summary>
    public string LockdownWord => Lockdown is { } mode ? Spell(mode) : "unknown";

    /// <summary>The mode named by <paramref name="text"/>, or null.</summary>
    public static KernelLockdown? ParseLockdown(string text) => text switch
    {
        "none" => KernelLockdown.None,
        "integrity" => KernelLockdown.Integrity,
        "confidentiality" => KernelLockdown.Confidentiality,
        _ => null,
    };

    /// <summary>The mode in securityfs' text (<c>none [integrity] confidentiality</c>: the bracketed one), or null when
    /// there is no bracketed known mode.</summary>
    public static KernelLockdown? ParseSecurityFs(string text)
    {
        int open = text.IndexOf('['), close = text.IndexOf(']');
        return open >= 0 && close > open ? ParseLockdown(text[(open + 1)..close]) : null;
    }

    /// <summary>True when the kernel is known to be locked down (integrity or confidentiality).</summary>
    public bool LockedDown => Lockdown is KernelLockdown.Integrity or KernelLockdown.Confidentiality;

    /// <summary>The object compact, keys in the documented order: the PCR 13 PlatformSecurity event's data.</summary>
    public byte[] ToMeasuredJson()
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer))
            Write(writer);
        return buffer.WrittenSpan.ToArray();
    }

    internal void Write(Utf8JsonWriter writer)
    {
        writer.WriteStartObject();
        writer.WriteString("firmware", Spell(Firmware));
        if (SecureBoot is { } on) writer.WriteBoolean("secure_boot", on); else writer.WriteNull("secure_boot");
        if (Lockdown is { } mode) writer.WriteString("lockdown", Spell(mode)); else writer.WriteNull("lockdown");
        writer.WriteEndObject();
    }

    /// <summary>Largest PlatformSecurity event data accepted (the object is about 60 bytes).</summary>
    public const int MaxMeasuredBytes = 1024;

    /// <summary>
    /// Reads the PCR 13 PlatformSecurity event's data (<see cref="ToMeasuredJson"/>'s output) as a verifier does: one JSON
    /// object of at most <see cref="MaxMeasuredBytes"/> with the same fields and rules as handover.json's <c>platform</c>.
    /// Bad input throws <see cref="PackageFormatException"/> naming the field.
    /// </summary>
    public static HandoverPlatform ParseMeasured(ReadOnlySpan<byte> json)
    {
        const string what = "PlatformSecurity event";
        using var document = JsonFields.ParseObject(json, MaxMeasuredBytes, what);
        return Read(new JsonFields(document.RootElement, what), document.RootElement, what);
    }

    internal static HandoverPlatform Read(JsonFields parent, JsonElement value, string what = "handover.json: platform")
    {
        if (value.ValueKind != JsonValueKind.Object)
            return parent.Wrong<HandoverPlatform>("platform", "an object", value);
        var fields = new JsonFields(value, what);
        var firmware = fields.RequiredString("firmware") switch
        {
            "bios" => PlatformFirmware.Bios,
            "uefi" => PlatformFirmware.Uefi,
            _ => fields.Missing<PlatformFirmware>("firmware", "\"uefi\" or \"bios\""),
        };
        bool? secureBoot = fields.OptionalBool("secure_boot");
        KernelLockdown? lockdown = null;
        if (fields.OptionalString("lockdown") is { } text)
            lockdown = ParseLockdown(text) ?? fields.Missing<KernelLockdown>("lockdown", "\"none\", \"integrity\", \"confidentiality\" or null");
        if (firmware == PlatformFirmware.Bios && secureBoot is not null)
            fields.Invalid("secure_boot", "must be null when the firmware is \"bios\"");
        return new HandoverPlatform(firmware, secureBoot, lockdown);
    }
}
