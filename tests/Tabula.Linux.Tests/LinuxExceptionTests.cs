using Tabula.Linux;

namespace Tabula.Linux.Tests;

public sealed class LinuxExceptionTests
{
    [Fact]
    public void Message_spells_the_call_and_the_errno_like_u_root()
    {
        var e = new LinuxException("kexec_file_load(kernel=fd 5, initrd=fd 6, flags=0x0)", 1);
        Assert.Equal("kexec_file_load(kernel=fd 5, initrd=fd 6, flags=0x0) = EPERM (Operation not permitted)", e.Message);
        Assert.Equal(Errno.EPERM, e.Errno);
        Assert.False(e.IsTransient);
    }

    [Theory]
    [InlineData(Errno.EINTR, true), InlineData(Errno.EAGAIN, true), InlineData(Errno.EBUSY, true)]
    [InlineData(Errno.ENETUNREACH, true), InlineData(Errno.ENOEXEC, false), InlineData(Errno.EKEYREJECTED, false)]
    public void Transient_errors_are_the_ones_a_retry_can_fix(Errno errno, bool transient) =>
        Assert.Equal(transient, new LinuxException("call()", (int)errno).IsTransient);

    [Fact]
    public void Unknown_errno_is_kept_as_a_number() =>
        Assert.Equal("call() = errno 4000", new LinuxException("call()", 4000).Message);
}
