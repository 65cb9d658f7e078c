using System.Net;
using Tabula.Testing;

namespace Tabula.EndToEnd.Tests.Harness;

/// <summary>
/// A network namespace with one tap device for one guest: the host side has <see cref="HostAddress"/>/24, the
/// guest is told to use <see cref="GuestAddress"/>. The namespace has no route out, so the guest reaches only
/// servers the test starts in it. Deleting the namespace removes the tap.
/// </summary>
public sealed class TapNetwork : IDisposable
{
    static int subnet;

    TapNetwork(NetworkNamespace ns, int third)
    {
        Namespace = ns;
        HostAddress = IPAddress.Parse($"10.199.{third}.1");
        GuestAddress = IPAddress.Parse($"10.199.{third}.2");
    }

    /// <summary>The namespace QEMU and the servers run in.</summary>
    public NetworkNamespace Namespace { get; }

    /// <summary>The tap device's name inside the namespace.</summary>
    public string Tap => "tap0";

    /// <summary>Address of the namespace side of the tap (where servers listen).</summary>
    public IPAddress HostAddress { get; }

    /// <summary>Address the guest configures statically.</summary>
    public IPAddress GuestAddress { get; }

    /// <summary>Creates the namespace and the tap, with the host address, up.</summary>
    public static TapNetwork Create()
    {
        int third = Interlocked.Increment(ref subnet) % 250;
        var ns = NetworkNamespace.Create("tap");
        try
        {
            ns.Ip("tuntap", "add", "dev", "tap0", "mode", "tap");
            ns.Ip("addr", "add", $"10.199.{third}.1/24", "dev", "tap0");
            ns.Ip("link", "set", "tap0", "up");
            return new TapNetwork(ns, third);
        }
        catch
        {
            ns.Dispose();
            throw;
        }
    }

    /// <inheritdoc />
    public void Dispose() => Namespace.Dispose();
}
