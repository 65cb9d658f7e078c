namespace Tabula.Relay.Dns;

/// <summary>
/// The resolver's totals since start: counts only, never a name or an address, for the health report and /metrics.
/// </summary>
public sealed record DnsCounters(
    long QueriesAnswered,
    long CacheHits,
    long Forwarded,
    long UpstreamFailures,
    long Malformed,
    long NotFromPool,
    long Overloaded,
    int CacheEntries);

/// <summary>The live counters behind <see cref="DnsCounters"/>.</summary>
internal sealed class DnsCounterSet
{
    public long QueriesAnswered;
    public long CacheHits;
    public long Forwarded;
    public long UpstreamFailures;
    public long Malformed;
    public long NotFromPool;
    public long Overloaded;

    public DnsCounters Snapshot(int cacheEntries) => new(
        Interlocked.Read(ref QueriesAnswered), Interlocked.Read(ref CacheHits), Interlocked.Read(ref Forwarded),
        Interlocked.Read(ref UpstreamFailures), Interlocked.Read(ref Malformed), Interlocked.Read(ref NotFromPool),
        Interlocked.Read(ref Overloaded), cacheEntries);
}
