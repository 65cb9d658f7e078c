using System.Net;
using System.Net.Sockets;

namespace Tabula.Linux.Tests;

/// <summary>epoll, eventfd, directory fsync and link(2) through their Tabula.Linux wrappers, on real descriptors.</summary>
public sealed class EpollTests
{
    [Fact]
    public void An_eventfd_signal_wakes_a_wait_with_the_data_it_was_added_with()
    {
        using var epoll = Epoll.Create();
        using var wake = EventFd.Create();
        epoll.Add(wake.Handle, EpollEvents.In, 42);
        var events = new EpollEvent[4];
        Assert.Equal(0, epoll.Wait(events, 0));
        wake.Signal();
        Assert.Equal(1, epoll.Wait(events, 1000));
        Assert.Equal(42UL, events[0].Data);
        Assert.True((events[0].Events & EpollEvents.In) != 0);
    }

    [Fact]
    public void A_connected_socket_is_reported_writable_then_readable_edge_triggered()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        client.Connect(listener.LocalEndPoint!);
        using var server = listener.Accept();

        using var epoll = Epoll.Create();
        epoll.Add(server.SafeHandle, EpollEvents.In | EpollEvents.Out | EpollEvents.EdgeTriggered, 7);
        var events = new EpollEvent[4];
        Assert.Equal(1, epoll.Wait(events, 1000));
        Assert.Equal((EpollEvents.Out, 7UL), (events[0].Events, events[0].Data));
        Assert.Equal(0, epoll.Wait(events, 0));   // edge-triggered: no new edge, no event

        client.Send("x"u8);
        Assert.Equal(1, epoll.Wait(events, 1000));
        Assert.True((events[0].Events & EpollEvents.In) != 0);

        Assert.True(epoll.TryRemove(server.SafeHandle));
        Assert.False(epoll.TryRemove(server.SafeHandle));
        server.Dispose();
        Assert.False(epoll.TryRemove(server.SafeHandle));   // closed: nothing to remove, no stale descriptor number used
    }

    [Fact]
    public void Adding_a_descriptor_twice_is_EEXIST()
    {
        using var epoll = Epoll.Create();
        using var wake = EventFd.Create();
        epoll.Add(wake.Handle, EpollEvents.In, 1);
        Assert.Equal(Errno.EEXIST, Assert.Throws<LinuxException>(() => epoll.Add(wake.Handle, EpollEvents.In, 1)).Errno);
    }

    [Fact]
    public void A_directory_syncs_and_a_missing_one_is_ENOENT()
    {
        string directory = Directory.CreateTempSubdirectory("tabula-sync-").FullName;
        try
        {
            FileSystem.SyncDirectory(directory);
            var e = Assert.Throws<LinuxException>(() => FileSystem.SyncDirectory(Path.Combine(directory, "missing")));
            Assert.Equal(Errno.ENOENT, e.Errno);
            File.WriteAllText(Path.Combine(directory, "file"), "x");
            Assert.Equal(Errno.ENOTDIR, Assert.Throws<LinuxException>(() => FileSystem.SyncDirectory(Path.Combine(directory, "file"))).Errno);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public void A_hard_link_shares_the_bytes_and_a_taken_name_is_refused()
    {
        string directory = Directory.CreateTempSubdirectory("tabula-link-").FullName;
        try
        {
            string original = Path.Combine(directory, "a"), linked = Path.Combine(directory, "b");
            File.WriteAllText(original, "shared");
            Assert.True(FileSystem.TryCreateHardLink(original, linked));
            File.AppendAllText(original, " bytes");
            Assert.Equal("shared bytes", File.ReadAllText(linked));
            Assert.False(FileSystem.TryCreateHardLink(original, linked));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public void A_failed_call_returning_a_descriptor_is_an_invalid_handle()
    {
        // open(2) returns a C int; -1 must not pass as descriptor 0xFFFFFFFF (it did before SafeFdHandle compared the low half).
        var e = Assert.Throws<LinuxException>(() => FileSystem.SyncDirectory("/nonexistent-" + Guid.NewGuid().ToString("N")));
        Assert.StartsWith("open(", e.Call);
    }
}
