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
        var platform = context.Platform = PlatformProbe.Read(env);
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
            $"host_config={source} network={host.NetworkMode.ToString().ToLowerInvariant()} pointers={host.OsPackagePointers.Count} {PlatformProbe.Describe(platform)}");
        context.Log.Note("kexec", Kexec.KexecChoice.For(context.Options.KexecMethod, platform).Describe());
        return Transition.To(network ? new ConfigureNetwork() : new FetchPackage(0));

        Transition Fail(FailureReason reason, string detail) =>
            Transition.To(new Recover(new BootFailure(Name, reason, detail), new LoadConfiguration()));
    }
}
