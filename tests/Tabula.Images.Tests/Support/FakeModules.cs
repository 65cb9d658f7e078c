using System.Text;

namespace Tabula.Images.Tests;

/// <summary>A module tree on disk for tests: modules.dep as given, and a tiny ELF-looking .ko for every path it names.</summary>
public static class FakeModules
{
    /// <summary>virtio_net needs net_failover needs failover (the shape of Debian's tree).</summary>
    public const string VirtioNetDep =
        "kernel/virtio_net.ko: kernel/net_failover.ko kernel/failover.ko\nkernel/net_failover.ko: kernel/failover.ko\nkernel/failover.ko:\n";

    /// <summary>Writes <paramref name="modulesRoot"/>/<paramref name="release"/>/ with <paramref name="modulesDep"/>.</summary>
    public static void Write(string modulesRoot, string release, string modulesDep)
    {
        string directory = Path.Combine(modulesRoot, release);
        Directory.CreateDirectory(directory);
        File.WriteAllText(Path.Combine(directory, "modules.dep"), modulesDep);
        foreach (string path in modulesDep.Split([' ', '\n', ':'], StringSplitOptions.RemoveEmptyEntries).Distinct())
        {
            string file = Path.Combine(directory, path);
            Directory.CreateDirectory(Path.GetDirectoryName(file)!);
            File.WriteAllBytes(file, [0x7F, (byte)'E', (byte)'L', (byte)'F', .. Encoding.ASCII.GetBytes(Path.GetFileName(path))]);
        }
    }
}
