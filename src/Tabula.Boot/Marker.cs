using Tabula.Packaging;

namespace Tabula.Boot;

/// <summary>
/// The tiny "OS" of the end-to-end tests and the benchmark: the same binary as /init of a signed package, started
/// with "-- marker". It prints the hand-over digest and the command line it was booted with, then powers off:
/// <c>TABULA-MARKER ospkg_sha256=HEX source=network secure_boot=true kernel-uptime=…s efi=runtime lockdown=integrity
/// setup_data=9,4 cmdline="…"</c>, or <c>TABULA-MARKER no-handover</c> when booted directly (the benchmark's baseline).
/// <c>secure_boot=</c> is the hand-over's (<c>platform.secure_boot</c>: true, false, unknown, or absent without a
/// platform object); <c>efi=</c> is what this kernel kept of UEFI after the hand-over: <c>runtime</c> (its variable
/// services registered: /sys/firmware/efi/efivars), <c>boot</c> (booted by EFI without runtime services), <c>none</c>;
/// <c>lockdown=</c> is this kernel's own mode (unknown without securityfs); <c>setup_data=</c> lists the types of the
/// setup_data records this kernel was booted with, in list order (/sys/kernel/boot_params/setup_data: 9 SETUP_RNG_SEED,
/// 4 SETUP_EFI), or <c>none</c>.
/// </summary>
internal static class Marker
{
    public static void Run(BootLog log)
    {
        string digest = "no-handover", source = "";
        string path = InitramfsLayout.OnMachine(InitramfsLayout.Handover);
        if (File.Exists(path))
        {
            var handover = HandoverRecord.Parse(TrustPolicyFolder.ReadLimited(path, Limits.MaxHandoverBytes));
            handover.Clear();
            digest = "ospkg_sha256=" + handover.OsPackageSha256.Hex;
            source = " source=" + handover.Source.ToString().ToLowerInvariant() + " secure_boot=" + handover.Platform switch
            {
                null => "absent",
                { SecureBoot: null } => "unknown",
                { SecureBoot: true } => "true",
                _ => "false",
            };
        }
        string cmdline = File.Exists("/proc/cmdline") ? File.ReadAllText("/proc/cmdline").Trim() : "?";
        Console.Out.WriteLine($"TABULA-MARKER {digest}{source} kernel-uptime={Uptime()} efi={Efi()} lockdown={Lockdown()} setup_data={SetupData()} cmdline=\"{cmdline}\"");
        Console.Out.Flush();
        log.Note("marker", "powering off");
    }

    static string Efi() =>
        Directory.Exists("/sys/firmware/efi/efivars") ? "runtime" : Directory.Exists("/sys/firmware/efi") ? "boot" : "none";

    static string Lockdown() => PlatformProbe.ReadLockdown() is { } mode ? HandoverPlatform.Spell(mode) : "unknown";

    /// <summary>The kernel numbers the records 0, 1, … in the order of hdr.setup_data's list.</summary>
    static string SetupData()
    {
        const string root = "/sys/kernel/boot_params/setup_data";
        try
        {
            if (!Directory.Exists(root))
                return "none";
            var types = Directory.GetDirectories(root).Select(d => (Index: int.TryParse(Path.GetFileName(d), out int i) ? i : int.MaxValue, Dir: d))
                .OrderBy(e => e.Index).Take(16)
                .Select(e => File.ReadAllText(Path.Combine(e.Dir, "type")).Trim())
                .Select(t => t.StartsWith("0x", StringComparison.Ordinal) && uint.TryParse(t[2..], System.Globalization.NumberStyles.HexNumber, null, out uint v) ? v.ToString() : "?")
                .ToArray();
            return types.Length == 0 ? "none" : string.Join(',', types);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return "?"; }
    }

    public static string Uptime()
    {
        try { return File.ReadAllText("/proc/uptime").Split(' ')[0] + "s"; }
        catch (IOException) { return "?"; }
    }
}
