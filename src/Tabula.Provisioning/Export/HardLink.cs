using System.Runtime.InteropServices;

namespace Tabula.Provisioning.Export;

/// <summary>link(2): exports on the store's file system share the archive bytes instead of copying them.</summary>
internal static partial class HardLink
{
    [LibraryImport("libc", EntryPoint = "link", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int Link(string existing, string created);

    public static bool TryCreate(string existing, string created) =>
        OperatingSystem.IsLinux() && Link(existing, created) == 0;
}
