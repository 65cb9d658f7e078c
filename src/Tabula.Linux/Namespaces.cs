using Microsoft.Win32.SafeHandles;
using Tabula.Linux.Interop;

namespace Tabula.Linux;

/// <summary>Namespace kinds for setns(2) (CLONE_NEW* in include/uapi/linux/sched.h).</summary>
public enum NamespaceKind
{
    /// <summary>Any kind: the descriptor decides.</summary>
    Any = 0,
    /// <summary>CLONE_NEWNET.</summary>
    Network = 0x40000000,
    /// <summary>CLONE_NEWNS.</summary>
    Mount = 0x00020000,
}

/// <summary>setns(2). Affects only the calling thread; sockets opened there stay in that namespace.</summary>
public static class Namespaces
{
    /// <summary>Moves the calling thread into the namespace <paramref name="namespaceFile"/> refers to (e.g. /run/netns/NAME).</summary>
    public static void Enter(SafeFileHandle namespaceFile, NamespaceKind kind)
    {
        ArgumentNullException.ThrowIfNull(namespaceFile);
        if (Libc.Setns(namespaceFile, (int)kind) != 0)
            LinuxException.ThrowLastError($"setns(fd={namespaceFile.DangerousGetHandle()}, type=0x{(int)kind:x})");
    }

    /// <summary>
    /// Runs <paramref name="action"/> on a new thread that has entered the namespace at <paramref name="namespacePath"/>
    /// (e.g. /run/netns/NAME) and returns its result, rethrowing its exception. The caller's thread never changes
    /// namespace; sockets created inside stay in that namespace after the thread ends.
    /// </summary>
    public static T RunInside<T>(string namespacePath, NamespaceKind kind, Func<T> action)
    {
        T? result = default;
        Exception? failure = null;
        var thread = new Thread(() =>
        {
            try
            {
                using SafeFileHandle ns = File.OpenHandle(namespacePath, FileMode.Open, FileAccess.Read);
                Enter(ns, kind);
                result = action();
            }
            catch (Exception e) { failure = e; }
        });
        thread.Start();
        thread.Join();
        if (failure is not null)
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failure);
        return result!;
    }
}
