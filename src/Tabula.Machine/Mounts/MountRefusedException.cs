namespace Tabula.Machine.Mounts;

/// <summary>Why the mount gate refused a mount.</summary>
public enum MountRefusal
{
    /// <summary>The source is a block device: nothing of a Tabula machine may live on a disk.</summary>
    BlockDevice,
}

/// <summary>The amnesia gate refused a mount before the kernel was asked.</summary>
public sealed class MountRefusedException(MountRefusal reason, string detail) : Exception(detail)
{
    /// <summary>Why.</summary>
    public MountRefusal Reason { get; } = reason;
}
