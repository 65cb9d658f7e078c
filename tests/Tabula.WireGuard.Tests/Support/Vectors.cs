using System.Text.Json;

namespace Tabula.WireGuard.Tests.Support;

/// <summary>The WireGuard vectors in tests/vectors/wireguard, read byte for byte.</summary>
internal static class Vectors
{
    public const string JsonSha256 = "7e64b2a61be81db2a6e8233f5b9573fbcb50ff940ba041274aaa263dfe3fc2f4";

    public static string RepositoryRoot { get; } = FindRoot();

    public static string PathOf(string relative) => Path.Combine(RepositoryRoot, "tests", "vectors", relative);

    public static byte[] ReadJsonBytes() => File.ReadAllBytes(PathOf("wireguard/wireguard-test-vectors.json"));

    /// <summary>A hex field of one object of the JSON ("psk_zero", "initiator_static_public").</summary>
    public static byte[] Hex(string section, string field)
    {
        using var document = JsonDocument.Parse(ReadJsonBytes());
        return Convert.FromHexString(document.RootElement.GetProperty(section).GetProperty(field).GetString()!);
    }

    static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Tabula.slnx")))
                return dir.FullName;
        throw new InvalidOperationException("cannot find the repository root (Tabula.slnx) above " + AppContext.BaseDirectory);
    }
}
