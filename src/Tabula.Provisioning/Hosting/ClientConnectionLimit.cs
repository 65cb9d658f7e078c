using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Tabula.Provisioning.Http;

namespace Tabula.Provisioning.Hosting;

/// <summary>
/// Kestrel connection middleware: at most <c>max</c> connections per client address (an IPv4 address or an IPv6 /64) at
/// once. One more is closed before its TLS handshake is awaited and before any request, so one client holding slow
/// downloads cannot take every slot of <see cref="ProvisioningLimits.MaxConcurrentConnections"/> while machines boot.
/// The address is an in-memory key only (never logged, never exported), dropped with its last connection.
/// </summary>
internal sealed class ClientConnectionLimit(int max, ProvisioningMetrics metrics)
{
    readonly ConcurrentDictionary<string, int> open = new(StringComparer.Ordinal);

    public void Apply(ListenOptions listen) => listen.Use(next => async connection =>
    {
        string key = Key((connection.RemoteEndPoint as IPEndPoint)?.Address);
        if (!TryEnter(key))
        {
            metrics.ConnectionRefusedPerClient();
            connection.Abort(new ConnectionAbortedException("too many connections from this client"));
            return;
        }
        try
        {
            await next(connection);
        }
        finally
        {
            Leave(key);
        }
    });

    /// <summary>IPv4 (also IPv4-mapped) by address, IPv6 by its /64 (one subscriber's usual allocation).</summary>
    internal static string Key(IPAddress? address)
    {
        if (address is null)
            return "";
        if (address.IsIPv4MappedToIPv6)
            address = address.MapToIPv4();
        if (address.AddressFamily != AddressFamily.InterNetworkV6)
            return address.ToString();
        Span<byte> bytes = stackalloc byte[16];
        address.TryWriteBytes(bytes, out _);
        bytes[8..].Clear();
        return new IPAddress(bytes) + "/64";
    }

    bool TryEnter(string key)
    {
        while (true)
        {
            int current = open.GetOrAdd(key, 0);
            if (current >= max)
                return false;
            if (open.TryUpdate(key, current + 1, current))
                return true;
        }
    }

    void Leave(string key)
    {
        while (true)
        {
            int current = open[key];
            if (current == 1 ? open.TryRemove(new KeyValuePair<string, int>(key, 1)) : open.TryUpdate(key, current - 1, current))
                return;
        }
    }
}
