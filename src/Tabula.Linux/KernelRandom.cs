using Tabula.Linux.Interop;

namespace Tabula.Linux;

/// <summary>getrandom(2) flags.</summary>
[Flags]
public enum RandomFlags : uint
{
    /// <summary>Block until the pool is initialised, then never block.</summary>
    None = 0,
    /// <summary>GRND_NONBLOCK: fail with EAGAIN instead of blocking before initialisation.</summary>
    NonBlocking = 1,
    /// <summary>GRND_RANDOM (legacy).</summary>
    Random = 2,
    /// <summary>GRND_INSECURE (Linux 5.6): never block, may return uninitialised output.</summary>
    Insecure = 4,
}

/// <summary>The kernel's random number generator, with no libraries in between.</summary>
public static class KernelRandom
{
    /// <summary>Fills <paramref name="destination"/> from getrandom(2), continuing after short reads and EINTR.</summary>
    public static unsafe void Fill(Span<byte> destination, RandomFlags flags = RandomFlags.None)
    {
        fixed (byte* start = destination)
        {
            int done = 0;
            while (done < destination.Length)
            {
                nint n = Libc.GetRandom(start + done, (nuint)(destination.Length - done), (uint)flags);
                if (n < 0)
                {
                    var error = LinuxException.FromLastError($"getrandom(length={destination.Length - done}, flags=0x{(uint)flags:x})");
                    if (error.Errno == Errno.EINTR)
                        continue;
                    throw error;
                }
                done += (int)n;
            }
        }
    }
}
