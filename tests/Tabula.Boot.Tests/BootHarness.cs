using Tabula.Boot.States;
using System.Net;
using Tabula.Boot.Seams;
using Tabula.Linux.Efi;
using Tabula.Machine.Modules;
using Tabula.Machine.Mounts;
using Tabula.Testing.Packages;

namespace Tabula.Boot.Tests;

/// <summary>Answers GETs from a table of path → (status, body); records request URLs. Thread-safe.</summary>
internal sealed class FakeHttp : HttpMessageHandler
{
    readonly Dictionary<string, Func<HttpResponseMessage>> routes = new(StringComparer.Ordinal);

    public List<string> Requests { get; } = [];

    public FakeHttp Serve(string url, byte[] body)
    {
        lock (routes)
            routes[url] = () => new HttpResponseMessage(HttpStatusCode.OK) { Content = new ByteArrayContent(body) };
        return this;
    }

    public FakeHttp Answer(string url, Func<HttpResponseMessage> answer)
    {
        lock (routes)
            routes[url] = answer;
        return this;
    }

    protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        string url = request.RequestUri!.ToString();
        lock (routes)
        {
            Requests.Add(url);
            if (routes.TryGetValue(url, out var answer))
                return Task.FromResult(answer());
        }
        throw new HttpRequestException(HttpRequestError.ConnectionError, "Connection refused (fake)");
    }
}

/// <summary>
/// A fake machine: a temporary root with /etc/trust_policy and /etc/host_configuration.json, dry-run kexec and
/// power, a present network, fake HTTP, a clock that does not wait. Runs the real state machine.
/// </summary>
internal sealed class BootHarness : IDisposable
{
    public string Root { get; } = Directory.CreateTempSubdirectory("tabula-boot-test-").FullName;
    public DryRunKexec Kexec { get; } = new();
    public DryRunPower Power { get; } = new();
    public PresentNetwork Network { get; } = new();
    public FakeHttp Http { get; } = new();
    public StringWriter Console { get; } = new();
    public List<TimeSpan> Sleeps { get; } = [];
    public List<string> LoadedModules { get; } = [];
    public BootOptions Options { get; set; } = new() { AttemptsPerObject = 2, MaxRounds = 3 };

    /// <summary>How HTTP is done once the TLS roots are known; null: <see cref="Http"/> (fake). The freshness tests set
    /// stboot's real pinned handler here to talk HTTPS to loopback servers.</summary>
    public Func<IReadOnlyList<Packaging.Certificate>?, (HttpMessageHandler Handler, Fetch.PinnedTls? Tls)>? HttpFactory { get; set; }

    /// <summary>The machine's TPM (issue 19): null, none (the default); the measured boot tests open a real swtpm.</summary>
    public Func<Tabula.Tpm.Tpm2?> OpenTpm { get; set; } = () => null;

    public string PathOf(string absolute) => Path.Combine(Root, absolute.TrimStart('/'));

    public BootHarness WriteFile(string absolute, byte[] content)
    {
        string path = PathOf(absolute);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, content);
        return this;
    }

    public BootHarness TrustPolicy(int threshold, string fetchMethod, params TestSigner[] roots)
    {
        SignedPackages.TrustPolicy(PathOf("/etc/trust_policy"), threshold, fetchMethod, roots);
        return this;
    }

    public BootHarness HostConfig(string json) => WriteFile("/etc/host_configuration.json", SignedPackages.Utf8(json));

    public BootOutcome Run()
    {
        var log = new BootLog(Console, TimeProvider.System);
        var environment = new BootEnvironment
        {
            Root = Root,
            Kexec = Kexec,
            Power = Power,
            Modules = new RecordingModules(LoadedModules),
            Mounts = new NoMounts(),
            Network = Network,
            Http = HttpFactory ?? (_ => (Http, null)),
            Time = TimeProvider.System,
            Sleep = Sleeps.Add,
            EfiVariables = new EfiVariables(PathOf("/sys/firmware/efi/efivars")),
            OpenTpm = OpenTpm,
        };
        return BootMachine.Run(new BootContext(environment, Options, log), new States.MountFileSystems());
    }

    public string[] ConsoleLines => Console.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);

    public void Dispose() => Directory.Delete(Root, recursive: true);

    sealed class NoMounts : IMounts
    {
        public string MountEssentials() => "none (test)";

        public bool MountEfiVariables() => false;
    }

    internal sealed class RecordingModules(List<string> loaded) : IModuleLoader
    {
        public bool Load(string path)
        {
            if (!File.Exists(path))
                throw new FileNotFoundException($"module {path} is missing", path);
            loaded.Add(path);
            return true;
        }
    }
}
