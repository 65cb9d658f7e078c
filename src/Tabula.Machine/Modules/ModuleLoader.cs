using Microsoft.Win32.SafeHandles;
using Tabula.Linux;

namespace Tabula.Machine.Modules;

/// <summary>Loads one kernel module file (a seam: host tests record instead).</summary>
public interface IModuleLoader
{
    /// <summary>Loads the module at <paramref name="path"/>; false when it was already loaded.</summary>
    bool Load(string path);
}

/// <summary>finit_module(2) on the file; EEXIST (already loaded) is not an error.</summary>
public sealed class LinuxModuleLoader : IModuleLoader
{
    /// <inheritdoc />
    public bool Load(string path)
    {
        using SafeFileHandle module = File.OpenHandle(path, FileMode.Open, FileAccess.Read);
        try
        {
            KernelModule.Load(module);
            return true;
        }
        catch (LinuxException e) when (e.Errno == Errno.EEXIST)
        {
            return false;
        }
    }
}
