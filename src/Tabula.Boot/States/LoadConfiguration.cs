using System.Diagnostics;
using Tabula.Linux;
using Tabula.Packaging;

namespace Tabula.Boot.States;

/// <summary>
/// Reads the trust policy folder (/etc/trust_policy: trust_policy.json, ospkg_signing_root.pem, tls_roots.pem,
/// optional ospkg_trust_policy) and the host configuration: /etc/host_configuration.json in the initramfs, else the
/// STHostConfig EFI variable (formats reference §4: the initramfs wins). Both are parsed by Tabula.Packaging, so
/// only valid ones exist past this state. For network fetch it also makes the HTTP client (TLS pinned to
/// tls_roots.pem).
/// </summary>
internal sealed class LoadConfiguration : BootState
{
    public const string TrustPolicyDirectory = "/" + InitramfsLayout.TrustPolicyDirectory;
    public const string HostConfigFile = "/" + InitramfsLayout.HostConfig;
    public const string HostConfigVariable = "STHostConfig";
    public static readonly Guid SystemTransparencyVendor = new("f401f2c1-b005-4be0-8cee-f2e5945bcbe7");

    public override string Name => "config";

    public override Transition Run(BootContext context)
    {
        var clock = Stopwatch.StartNew();
        var env = context.Environment;
        TrustPolicyFolder trust;
        try
        {
            trust = TrustPolicyFolder.Load(env.PathOf(TrustPolicyDirectory));
        }
        catch (Exception e) when (e is PackageFormatException or IOException or UnauthorizedAccessException)
        {
            return Fail(FailureReason.TrustPolicyInvalid, e.Message);
        }

        byte[] json;
        string source;
        try
        {
            string file = env.PathOf(HostConfigFile);
            if (File.Exists(file))
            {
                json = TrustPolicyFolder.ReadLimited(file, BootLimits.MaxHostConfigBytes);
                source = HostConfigFile;
            }
            else if (env.Mounts.MountEfiVariables() is var mounted && env.EfiVariables.TryRead(HostConfigVariable, SystemTransparencyVendor, out var variable))
            {
                json = variable!.Data;
                source = $"efivar:{HostConfigVariable}";
            }
            else
            {
                return Fail(FailureReason.HostConfigMissing, $"no {HostConfigFile} and no {HostConfigVariable} EFI variable{(mounted ? "" : " (efivarfs not mounted: not booted by UEFI, or no efivarfs module in the image)")}");
            }
        }
        catch (Exception e) when (e is PackageFormatException or KernelDataException or IOException or UnauthorizedAccessException)
        {
            return Fail(FailureReason.HostConfigInvalid, e.Message);
        }

        HostConfig host;
        try { host = HostConfig.Parse(json); }
        catch (PackageFormatException e) { return Fail(FailureReason.HostConfigInvalid, $"{source}: {e.Message}"); }
        if (host.OsPackagePointers.Count > BootLimits.MaxPointers)
            return Fail(FailureReason.HostConfigInvalid, $"{source}: more than {BootLimits.MaxPointers} ospkg_pointer entries");

        context.Configuration = new BootConfiguration(trust, host, json, source);
        bool network = trust.Policy.FetchMethod == FetchMethod.Network || trust.Policy.Freshness is not null;   // a ticket needs the network
        if (network)
        {
            var (handler, tls) = env.Http(trust.TlsRoots);
            context.Http = new HttpMessageInvoker(handler, disposeHandler: true);
            context.Tls = tls;
        }
        context.Log.StageDone(Name, clock.Elapsed,
            $"threshold={trust.Policy.SignatureThreshold} fetch={trust.Policy.FetchMethod.ToString().ToLowerInvariant()} " +
            $"roots={trust.SigningRoots.Count} tls_roots={trust.TlsRoots?.Count ?? 0}{(context.Tls?.Aead is { } aead ? " tls_aead=" + aead.Describe() : "")} sigsum={(trust.Sigsum is null ? "off" : "on")} " +
            $"freshness={(trust.Policy.Freshness is { } f ? FreshnessPolicy.Spell(f.Mode) : "off")} " +
            $"host_config={source} network={host.NetworkMode.ToString().ToLowerInvariant()} pointers={host.OsPackagePointers.Count} {Firmware(env)}");
        return Transition.To(network ? new ConfigureNetwork() : new FetchPackage(0));

        Transition Fail(FailureReason reason, string detail) =>
            Transition.To(new Recover(new BootFailure(Name, reason, detail), new LoadConfiguration()));
    }

    static readonly Guid GlobalVariable = new("8be4df61-93ca-11d2-aa0d-00e098032b8c");

    /// <summary>
    /// What booted us, for the console: <c>firmware=uefi|bios</c>, Secure Boot from the firmware's SecureBoot variable
    /// (on, off, or unknown when efivarfs is not there), and the kernel's lockdown mode from securityfs (Debian's kernel
    /// locks down to integrity under Secure Boot: kexec_load is then refused and kexec_file_load needs a kernel signed by
    /// a key the kernel trusts, db included).
    /// </summary>
    internal static string Firmware(BootEnvironment env)
    {
        bool uefi = Directory.Exists(env.PathOf("/sys/firmware/efi"));
        string secureBoot = "unknown";
        try
        {
            if (uefi && env.Mounts.MountEfiVariables() && env.EfiVariables.TryRead("SecureBoot", GlobalVariable, out var variable))
                secureBoot = variable!.Data is [1] ? "on" : "off";
        }
        catch (Exception e) when (e is KernelDataException or IOException or UnauthorizedAccessException) { }
        string lockdown = "unknown";
        try
        {
            string text = File.ReadAllText(env.PathOf("/sys/kernel/security/lockdown"));
            int open = text.IndexOf('['), close = text.IndexOf(']');
            if (open >= 0 && close > open)
                lockdown = text[(open + 1)..close];
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        return uefi ? $"firmware=uefi secure_boot={secureBoot} lockdown={lockdown}" : $"firmware=bios lockdown={lockdown}";
    }
}
