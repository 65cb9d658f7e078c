using Tabula.Packaging;

namespace Tabula.Fuzz.Targets;

/// <summary>
/// The data of stboot's PCR 13 PlatformSecurity event as a verifier reads it (issue 19/20). An accepted platform written
/// again (<c>ToMeasuredJson</c>) parses to the same platform, and Secure Boot is never known on a BIOS.
/// </summary>
public static class PlatformMeasurementTarget
{
    public static bool Fuzz(ReadOnlySpan<byte> input)
    {
        HandoverPlatform platform;
        try { platform = HandoverPlatform.ParseMeasured(input); }
        catch (PackageFormatException) { return false; }
        FuzzFinding.Check(HandoverPlatform.ParseMeasured(platform.ToMeasuredJson()) == platform, "platform: written and read again it changed", input);
        FuzzFinding.Check(platform.Firmware == PlatformFirmware.Uefi || platform.SecureBoot is null, "platform: Secure Boot known on a BIOS", input);
        return true;
    }
}
