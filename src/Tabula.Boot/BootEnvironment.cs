using Tabula.Boot.Seams;
using Tabula.Linux.Efi;
using Tabula.Machine.Modules;
using Tabula.Machine.Mounts;
using Tabula.Packaging;
using Tabula.Tpm;

namespace Tabula.Boot;

/// <summary>
/// Everything the boot touches outside its own memory, as parameters (STYLE: seams are parameters): the root of
/// the file system it reads (/ in the initramfs, a temporary folder in host tests), the kexec and power calls
/// (real or dry run), module loading (the machine layer's coldplug loads through it), mounts (the machine layer's, with the amnesia gate), the network, how HTTP is done, the clock and how it waits.
/// </summary>
internal sealed record BootEnvironment
{
    public required string Root { get; init; }
    public required IKexec Kexec { get; init; }
    public required IPower Power { get; init; }
    public required IModuleLoader Modules { get; init; }
    public required IMounts Mounts { get; init; }
    public required INetwork Network { get; init; }

    /// <summary>Makes the HTTP handler once the TLS roots are known (null: no tls_roots.pem).</summary>
    public required Func<IReadOnlyList<Certificate>?, (HttpMessageHandler Handler, Fetch.PinnedTls? Tls)> Http { get; init; }

    public required TimeProvider Time { get; init; }
    public required Action<TimeSpan> Sleep { get; init; }

    /// <summary>Opens the machine's TPM for the measure stage, or gives null when it has none (issue 19).</summary>
    public required Func<Tpm2?> OpenTpm { get; init; }

    /// <summary>efivarfs, for the STHostConfig variable.</summary>
    public required EfiVariables EfiVariables { get; init; }

    /// <summary>A path under <see cref="Root"/>, given as an absolute path in the initramfs.</summary>
    public string PathOf(string absolute) => Path.Combine(Root, absolute.TrimStart('/'));

    /// <summary>The real machine: PID 1 in the stboot initramfs.</summary>
    public static BootEnvironment Linux(BootLog log) => new()
    {
        Root = "/",
        Kexec = new LinuxKexec(),
        Power = new LinuxPower(),
        Modules = new LinuxModuleLoader(),
        Mounts = new MachineMounts("/", fact => log.Note("amnesia", fact)) { EfiVariables = true, SecurityFileSystem = true },
        Network = new Network.LinuxNetwork("/", log),
        Http = roots =>
        {
            var tls = roots is null ? null : new Fetch.PinnedTls(roots, TimeProvider.System) { Aead = Fetch.AeadPreference.Measure() };
            return (Fetch.PinnedTls.CreateHandler(tls), tls);
        },
        Time = TimeProvider.System,
        Sleep = Thread.Sleep,
        EfiVariables = new EfiVariables(),
        OpenTpm = () => Tabula.Machine.Tpm.TpmDeviceTransport.TryOpen(),
    };
}
