namespace Tabula.Qemu;

/// <summary>Why a machine failed.</summary>
public enum QemuFailure
{
    /// <summary>qemu-system-x86_64 (or ip, for a namespace) is not installed.</summary>
    Missing,
    /// <summary>QEMU could not be started, or failed to daemonize.</summary>
    StartFailed,
    /// <summary>QEMU exited before the awaited console line.</summary>
    Exited,
    /// <summary>The awaited console line or exit did not come in time.</summary>
    Timeout,
}

/// <summary>A machine failure; the message carries the console tail where there is one.</summary>
public sealed class QemuException(QemuFailure reason, string message, Exception? inner = null) : Exception(message, inner)
{
    /// <summary>Why.</summary>
    public QemuFailure Reason { get; } = reason;
}
