using Microsoft.Win32.SafeHandles;
using Tabula.Linux;

namespace Tabula.Boot.Seams;

/// <summary>Loads one kernel module file; a module that is already loaded counts as loaded.</summary>
internal interface IModuleLoader
{
    /// <summary>Returns false when the module was already loaded.</summary>
    bool Load(string path);
}

/// <summary>finit_module(2) on the file.</summary>
internal sealed class LinuxModuleLoader : IModuleLoader
{
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
