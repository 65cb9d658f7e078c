using System.Collections.Concurrent;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Tabula.Fleet.Api;

namespace Tabula.Fleet;

/// <summary>
/// Kestrel connection middleware: at most <c>max</c> connections per client address (an IPv4 address or an IPv6 /64) at
/// once; one more is closed before any byte is read, so one client cannot hold every slot of Kestrel's global limit. The
/// address is an in-memory key only, dropped with its last connection.
/// </summary>
public sealed class ClientConnectionLimit(int max)
{
    private readonly ConcurrentDictionary<string, int> open = new(StringComparer.Ordinal);

    /// <summary>Connections refused for being over the per-client cap (metrics).</summary>
    public long Refused => Interlocked.Read(ref refused);
    private long refused;

    public void Apply(ListenOptions listen) => listen.Use(next => async connection =>
    {
        string key = RateLimits.SourceKey((connection.RemoteEndPoint as System.Net.IPEndPoint)?.Address);
        if (!TryEnter(key))
        {
            Interlocked.Increment(ref refused);
            connection.Abort(new ConnectionAbortedException("too many connections from this client"));
            return;
        }
        try { await next(connection); }
        finally { Leave(key); }
    });

    private bool TryEnter(string key)
    {
        while (true)
        {
            int current = open.GetOrAdd(key, 0);
            if (current >= max) return false;
            if (open.TryUpdate(key, current + 1, current)) return true;
        }
    }

    private void Leave(string key)
    {
        while (true)
        {
            int current = open[key];
            if (current == 1)
            {
                if (open.TryRemove(new KeyValuePair<string, int>(key, 1))) return;
            }
            else if (open.TryUpdate(key, current - 1, current)) return;
        }
    }
}
