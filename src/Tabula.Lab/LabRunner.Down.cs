namespace Tabula.Lab;

public static partial class LabRunner
{
    /// <summary>What a lab directory holds; `down` deletes these and then the directory if it is empty.</summary>
    static readonly string[] Contents = ["keys", "secureboot", "packages", "provisioning", "fleet", "stboot", "machines", "wireguard", "logs", "attack", "tpm", LabState.FileName];

    /// <summary>
    /// Stops every process the lab in <paramref name="directory"/> started (those in state.json, then any process whose
    /// command line still names the directory, the namespaces or the lab's WireGuard interfaces), deletes the lab internet's
    /// namespaces (echo, customers: WireGuard interfaces go with them) and the lab namespace (bridges, taps) and the lab's files. Safe to run twice, and after a failed `up`.
    /// Returns one line per thing removed.
    /// </summary>
    public static IReadOnlyList<string> Down(string directory)
    {
        string dir = Path.GetFullPath(directory).TrimEnd('/');
        var state = LabState.Load(dir);
        string ns = state?.Namespace ?? NamespaceFor(dir);
        string wireguardPrefix = WireguardInterface(dir, 0)[..^1];
        var done = new List<string>();
        var grace = TimeSpan.FromSeconds(5);
        foreach (var process in (state?.Processes ?? []).AsEnumerable().Reverse())
            if (HostProcess.Stop(process.Pid, process.Marker, grace))
                done.Add($"stopped {process.Name} (pid {process.Pid})");
        // Leftovers of an `up` that died before recording them.
        foreach (string marker in new[] { dir + "/", "--netns " + ns + " ", "--netns " + LabInternet.EchoNamespace(ns) + " ", wireguardPrefix })
            foreach (int pid in HostProcess.FindByCommandLine(marker))
                if (HostProcess.Stop(pid, marker, grace))
                    done.Add($"stopped leftover pid {pid} ({marker.Trim()})");
        foreach (string deleted in LabInternet.Delete(ns))
            done.Add($"deleted namespace {deleted}");
        if (LabNetwork.Delete(ns))
            done.Add($"deleted namespace {ns} (bridges, taps, veths)");
        if (Directory.Exists("/var/run/wireguard"))
            foreach (string socket in Directory.GetFiles("/var/run/wireguard", wireguardPrefix + "*.sock"))
                File.Delete(socket);
        if (Directory.Exists(dir))
        {
            foreach (string entry in Contents.Select(c => Path.Combine(dir, c)))
            {
                if (Directory.Exists(entry))
                    Directory.Delete(entry, recursive: true);
                else
                    File.Delete(entry);
            }
            File.Delete(Path.Combine(dir, LabState.FileName + ".tmp"));
            if (!Directory.EnumerateFileSystemEntries(dir).Any())
            {
                Directory.Delete(dir);
                done.Add($"removed {dir}");
            }
            else
            {
                done.Add($"removed the lab's files from {dir} (other files there were left alone)");
            }
        }
        return done;
    }
}
