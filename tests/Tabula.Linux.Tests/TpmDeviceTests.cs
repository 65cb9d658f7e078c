using Tabula.Linux;
using Tabula.Linux.Tpm;
using Tabula.Testing;

namespace Tabula.Linux.Tests;

/// <summary>
/// The TPM device's open and transmit mechanics on the host (which has no TPM): missing devices, a path that is
/// there but unusable, and one write then one read on a FIFO that echoes. Real TPM traffic through the kernel
/// driver is tested in QEMU with swtpm (Tabula.EndToEnd.Tests).
/// </summary>
public sealed class TpmDeviceTests
{
    [Fact]
    public void No_device_is_no_tpm()
    {
        string dir = Directory.CreateTempSubdirectory("tabula-tpmdev-").FullName;
        try
        {
            Assert.Null(TpmDevice.TryOpen([Path.Combine(dir, "tpmrm0"), Path.Combine(dir, "tpm0")]));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void A_device_that_is_there_but_unusable_is_an_error_not_a_missing_tpm()
    {
        string dir = Directory.CreateTempSubdirectory("tabula-tpmdev-").FullName;
        try
        {
            var e = Assert.Throws<LinuxException>(() => TpmDevice.TryOpen([Path.Combine(dir, "tpmrm0"), dir]));
            Assert.Equal(Errno.EISDIR, e.Errno);
            Assert.Contains(dir, e.Call);
        }
        finally { Directory.Delete(dir, true); }
    }

    [ToolsFact("mkfifo")]
    public void Transmit_writes_the_command_once_and_reads_once()
    {
        string dir = Directory.CreateTempSubdirectory("tabula-tpmdev-").FullName;
        try
        {
            string fifo = Path.Combine(dir, "tpm0");
            Prerequisites.Run("mkfifo", fifo);
            using var device = TpmDevice.TryOpen([Path.Combine(dir, "tpmrm0"), fifo]);
            Assert.NotNull(device);
            Assert.Equal(fifo, device.Path);
            byte[] command = Convert.FromHexString("80010000000c0000017b0008"); // TPM2_GetRandom(8)
            var response = new byte[4096];
            Assert.Equal(command.Length, device.Transmit(command, response));
            Assert.Equal(command, response[..command.Length]);
        }
        finally { Directory.Delete(dir, true); }
    }
}
