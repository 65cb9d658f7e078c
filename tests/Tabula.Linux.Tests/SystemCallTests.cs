using Microsoft.Win32.SafeHandles;
using Tabula.Linux.Efi;
using Tabula.Testing;

namespace Tabula.Linux.Tests;

public sealed class SystemCallTests
{
    [Fact]
    public void Getrandom_fills_the_whole_buffer()
    {
        byte[] a = new byte[4096], b = new byte[4096];
        KernelRandom.Fill(a);
        KernelRandom.Fill(b);
        Assert.NotEqual(a, b);
        Assert.Contains(a, x => x != 0);
    }

    [Fact]
    public void Memory_file_reopened_read_only_reads_what_was_written()
    {
        using SafeFileHandle writable = MemoryFile.Create("tabula-test");
        RandomAccess.Write(writable, "kernel bytes"u8, 0);
        using SafeFileHandle readOnly = MemoryFile.ReopenReadOnly(writable);
        byte[] back = new byte[64];
        int n = RandomAccess.Read(readOnly, back, 0);
        Assert.Equal("kernel bytes"u8.ToArray(), back[..n]);
        Assert.Throws<UnauthorizedAccessException>(() => RandomAccess.Write(readOnly, "x"u8, 0));
    }

    [Fact]
    public void Mkdir_of_an_existing_directory_fails_with_EEXIST()
    {
        string dir = Directory.CreateTempSubdirectory("tabula-mkdir").FullName;
        try
        {
            FileSystem.MakeDirectory(Path.Combine(dir, "new"), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            Assert.True(Directory.Exists(Path.Combine(dir, "new")));
            var e = Assert.Throws<LinuxException>(() => FileSystem.MakeDirectory(dir, UnixFileMode.UserRead));
            Assert.Equal(Errno.EEXIST, e.Errno);
            Assert.StartsWith($"mkdir(path=\"{dir}\", mode=0400) = EEXIST", e.Message);
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [Fact]
    public void Mount_on_a_missing_directory_fails_with_the_call_spelled_out()
    {
        var e = Assert.Throws<LinuxException>(() => MountPoint.Mount("none", "/nonexistent/tabula", "tmpfs"));
        Assert.Contains(e.Errno, new[] { Errno.ENOENT, Errno.EPERM });
        Assert.StartsWith("mount(source=\"none\", target=\"/nonexistent/tabula\", type=\"tmpfs\", flags=0x0, data=NULL) = ", e.Message);
    }

    [PrivilegedFact]
    public void Tmpfs_mounts_and_unmounts()
    {
        Prerequisites.Require(needsRoot: true);
        string dir = Directory.CreateTempSubdirectory("tabula-mount").FullName;
        try
        {
            var mount = MountPoint.Mount("tabula", dir, "tmpfs", MountFlags.NoSetUid | MountFlags.NoDevices, "size=1m");
            File.WriteAllText(Path.Combine(dir, "probe"), "x");
            Assert.Contains($" {dir} tmpfs ", File.ReadAllText("/proc/self/mounts"));
            mount.Unmount();
            Assert.False(File.Exists(Path.Combine(dir, "probe")));
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [Fact]
    public void Finit_module_refuses_a_file_that_is_not_a_module()
    {
        using SafeFileHandle file = MemoryFile.Create("not-a-module");
        RandomAccess.Write(file, new byte[512], 0);
        var e = Assert.Throws<LinuxException>(() => KernelModule.Load(file));
        Assert.Contains(e.Errno, new[] { Errno.ENOEXEC, Errno.EPERM, Errno.ENOSYS, Errno.EINVAL });
        Assert.StartsWith("finit_module(fd=", e.Message);
    }

    [Fact]
    public void Kexec_refuses_a_command_line_over_the_architecture_limit()
    {
        using SafeFileHandle file = MemoryFile.Create("kernel");
        Assert.Throws<ArgumentException>(() => Kexec.LoadFile(file, null, new string('x', Limits.MaxKernelCommandLineBytes)));
    }

    [Fact]
    public void Efi_variable_is_read_as_attributes_then_data()
    {
        string dir = Directory.CreateTempSubdirectory("tabula-efivars").FullName;
        try
        {
            var vendor = Guid.Parse("f401f2c1-b005-4be0-8cee-f2e5945bcbe7");
            File.WriteAllBytes(Path.Combine(dir, "STHostConfig-f401f2c1-b005-4be0-8cee-f2e5945bcbe7"), [7, 0, 0, 0, .. "{}"u8]);
            File.WriteAllBytes(Path.Combine(dir, "Short-f401f2c1-b005-4be0-8cee-f2e5945bcbe7"), [7, 0]);
            var store = new EfiVariables(dir);

            Assert.True(store.TryRead("STHostConfig", vendor, out EfiVariable? variable));
            Assert.Equal(EfiVariableAttributes.NonVolatile | EfiVariableAttributes.BootServiceAccess | EfiVariableAttributes.RuntimeAccess,
                variable!.Attributes);
            Assert.Equal("{}"u8.ToArray(), variable.Data);
            Assert.False(store.TryRead("Missing", vendor, out _));
            Assert.Equal(KernelDataError.EfiVariableTruncated,
                Assert.Throws<KernelDataException>(() => store.TryRead("Short", vendor, out _)).Reason);
            Assert.False(new EfiVariables(Path.Combine(dir, "absent")).TryRead("STHostConfig", vendor, out _));
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}
