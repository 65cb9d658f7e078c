using Tabula.Linux;
using Tabula.Packaging;

namespace Tabula.Machine.Modules;

/// <summary>A module that did not load: its name and why (the stage that needs it fails later with its own reason).</summary>
public sealed record ModuleFailure(string Module, string Detail);

/// <summary>What coldplug did, for the console.</summary>
public sealed record ColdplugResult(
    string Release, int Devices, int Rounds, IReadOnlyList<string> Loaded, int AlreadyLoaded,
    IReadOnlyList<string> Matched, IReadOnlyList<ModuleFailure> Failed)
{
    /// <summary>"loaded=N already=N failed=N", the counts stboot's modules line has always had.</summary>
    public string Counts => $"loaded={Loaded.Count} already={AlreadyLoaded} failed={Failed.Count}";

    /// <summary>Modules whose init said ENODEV: nothing for them on this machine (efivarfs where the firmware is not
    /// UEFI). Not failures: coldplug loads alias-less modules without knowing whether the machine has their thing.</summary>
    public IReadOnlyList<string> NoDevice { get; init; } = [];

    /// <summary>The rest, for a note line: the release, devices seen, rounds, the modules a device asked for, and those
    /// that found nothing to drive.</summary>
    public string Summary => $"release={Release} devices={Devices} rounds={Rounds} matched={(Matched.Count == 0 ? "-" : string.Join(',', Matched))}" +
                             (NoDevice.Count == 0 ? "" : $" no-device={string.Join(',', NoDevice)}");
}

/// <summary>
/// Loads the image's kernel modules as udev does at coldplug, without udev: every module of the image whose alias
/// matches a device the machine has (each <c>/sys/bus/*/devices/*/modalias</c> against the image's modules.alias),
/// with its dependencies first (the image's modules.dep). Loading a bus driver makes new devices appear (virtio_pci
/// registers virtio0, whose modalias asks for virtio_net), so the scan repeats until a round loads nothing new, at
/// most <see cref="MachineLimits.MaxColdplugRounds"/> times. A module with no device alias at all (wireguard, a
/// file system) can never be asked for by a device: it is in the image because the image's builder asked for it, so
/// it is loaded in the first round. The index files are those of the running kernel's release
/// (<c>/proc/sys/kernel/osrelease</c>); an image without them loads nothing.
/// </summary>
public sealed class Coldplug(string root, IModuleLoader loader)
{
    /// <summary>The running kernel's release, or null when /proc is not there.</summary>
    string? Release()
    {
        string path = Path.Combine(root, "proc/sys/kernel/osrelease");
        try { return File.Exists(path) ? File.ReadAllText(path).Trim() : null; }
        catch (IOException) { return null; }
    }

    /// <summary>Runs coldplug. Throws <see cref="ModuleIndexException"/> when the image's index files are unusable.</summary>
    public ColdplugResult Run()
    {
        string release = Release() ?? "?";
        string directory = Path.Combine(root, InitramfsLayout.ModulesDirectory, release);
        string depPath = Path.Combine(directory, InitramfsLayout.ModulesDepFile);
        if (!File.Exists(depPath))
            return new ColdplugResult(release, 0, 0, [], 0, [], []);
        var dependencies = ModuleDependencies.Load(depPath);
        var aliases = ModuleAliases.Load(Path.Combine(directory, InitramfsLayout.ModulesAliasFile));
        var deviceModules = aliases.DeviceModules();

        var attempted = new HashSet<string>(StringComparer.Ordinal);
        var loaded = new List<string>();
        var matched = new List<string>();
        var failed = new List<ModuleFailure>();
        var noDevice = new List<string>();
        int already = 0, devices = 0, rounds = 0;
        // Round 0: what no device can ask for.
        var wanted = dependencies.Paths.Select(ModuleDependencies.NameOf).Where(n => !deviceModules.Contains(n)).Order(StringComparer.Ordinal).ToList();
        while (true)
        {
            foreach (string path in dependencies.Closure(wanted))
            {
                if (!attempted.Add(path)) continue;
                string name = ModuleDependencies.NameOf(path);
                try
                {
                    if (loader.Load(Path.Combine(directory, path))) loaded.Add(name);
                    else already++;
                }
                catch (LinuxException e) when (e.Errno == Errno.ENODEV)
                {
                    noDevice.Add(name);
                }
                catch (Exception e) when (e is LinuxException or IOException or UnauthorizedAccessException)
                {
                    failed.Add(new ModuleFailure(name, e.Message));
                }
            }
            if (++rounds > MachineLimits.MaxColdplugRounds) break;
            var modaliases = DeviceModaliases();
            devices = modaliases.Count;
            wanted = modaliases.SelectMany(aliases.Match).Distinct(StringComparer.Ordinal)
                .Where(name => dependencies.PathOf(name) is { } path && !attempted.Contains(path))
                .ToList();
            if (wanted.Count == 0) break;
            matched.AddRange(wanted);
        }
        return new ColdplugResult(release, devices, rounds, loaded, already, matched, failed) { NoDevice = noDevice };
    }

    /// <summary>The modalias of every device on every bus, each once (a device may be linked from two buses' lists).</summary>
    List<string> DeviceModaliases()
    {
        var result = new HashSet<string>(StringComparer.Ordinal);
        string buses = Path.Combine(root, "sys/bus");
        if (!Directory.Exists(buses)) return [];
        int seen = 0;
        foreach (string bus in Directory.EnumerateDirectories(buses).Order(StringComparer.Ordinal))
        {
            string devicesDirectory = Path.Combine(bus, "devices");
            if (!Directory.Exists(devicesDirectory)) continue;
            foreach (string device in Directory.EnumerateFileSystemEntries(devicesDirectory).Order(StringComparer.Ordinal))
            {
                if (++seen > MachineLimits.MaxColdplugDevices)
                    return [.. result];
                string file = Path.Combine(device, "modalias");
                byte[] bytes;
                try
                {
                    if (!File.Exists(file)) continue;
                    bytes = ReadBounded(file);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException) { continue; }
                try { result.Add(Modalias.Parse(bytes)); }
                catch (ModuleIndexException) { /* a device whose modalias we cannot read asks for nothing */ }
            }
        }
        return [.. result];
    }

    // sysfs files report a size of 4096 whatever they hold, so read up to the limit (one more byte tells it is over).
    static byte[] ReadBounded(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1);
        var buffer = new byte[MachineLimits.MaxModaliasBytes + 2];
        int total = 0, n;
        while (total < buffer.Length && (n = stream.Read(buffer, total, buffer.Length - total)) > 0)
            total += n;
        return buffer[..total];
    }
}
