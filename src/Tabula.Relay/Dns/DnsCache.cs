using System.Security.Cryptography;

namespace Tabula.Relay.Dns;

/// <summary>
/// Answers in RAM, keyed by (name lower-cased, type, class, DO, CD), least recently used first out, bounded in entries
/// and bytes. An entry lives for its TTL clamped to [min, max] (negative answers: [min, max negative], RFC 2308 §5).
/// Evicted and expired entries are zeroed. Thread-safe (one lock: every operation is a dictionary and list update).
/// </summary>
internal sealed class DnsCache(int maxEntries, long maxBytes, TimeSpan minTtl, TimeSpan maxTtl, TimeSpan maxNegativeTtl, TimeProvider time)
{
    sealed record Entry(DnsCacheKey Key, DnsAnswer Answer, long StoredAt, long ExpiresAt);

    readonly Dictionary<DnsCacheKey, LinkedListNode<Entry>> entries = [];
    readonly LinkedList<Entry> recency = new();   // most recently used first
    readonly Lock gate = new();
    long bytes;

    public int Count
    {
        get { lock (gate) return entries.Count; }
    }

    /// <summary>
    /// Writes the cached answer for <paramref name="query"/> (<see cref="DnsAnswer.WriteFor"/>, TTLs less its age) and
    /// returns its length, or 0 when absent or expired. Written under the lock: an eviction zeroes the bytes.
    /// </summary>
    public int TryAnswer(DnsCacheKey key, DnsQuery query, Span<byte> destination, int limit)
    {
        long now = time.GetTimestamp();
        lock (gate)
        {
            if (!entries.TryGetValue(key, out var node))
                return 0;
            if (now >= node.Value.ExpiresAt)
            {
                Remove(node);
                return 0;
            }
            recency.Remove(node);
            recency.AddFirst(node);
            uint age = (uint)time.GetElapsedTime(node.Value.StoredAt, now).TotalSeconds;
            return node.Value.Answer.WriteFor(query, destination, age, limit);
        }
    }

    /// <summary>Stores the answer for its clamped TTL; returns false when it may not be cached (TTL 0, SERVFAIL, TC).</summary>
    public bool Store(DnsCacheKey key, DnsAnswer answer)
    {
        if (answer.CacheSeconds == 0 || maxEntries == 0)
            return false;
        TimeSpan ttl = TimeSpan.FromSeconds(answer.CacheSeconds);
        ttl = answer.Negative ? Clamp(ttl, minTtl, maxNegativeTtl) : Clamp(ttl, minTtl, maxTtl);
        if (ttl <= TimeSpan.Zero || answer.Message.Length > maxBytes)
            return false;
        long now = time.GetTimestamp();
        long expires = now + (long)(ttl.TotalSeconds * time.TimestampFrequency);
        lock (gate)
        {
            if (entries.TryGetValue(key, out var old))
                Remove(old);
            while (entries.Count >= maxEntries || (entries.Count > 0 && bytes + answer.Message.Length > maxBytes))
                Remove(recency.Last!);
            var node = recency.AddFirst(new Entry(key, answer, now, expires));
            entries[key] = node;
            bytes += answer.Message.Length;
        }
        return true;
    }

    static TimeSpan Clamp(TimeSpan value, TimeSpan min, TimeSpan max) => value < min ? min : value > max ? max : value;

    void Remove(LinkedListNode<Entry> node)
    {
        entries.Remove(node.Value.Key);
        recency.Remove(node);
        bytes -= node.Value.Answer.Message.Length;
        node.Value.Answer.Clear();
        node.Value.Key.Clear();
    }

    /// <summary>Drops and zeroes every entry.</summary>
    public void Clear()
    {
        lock (gate)
            while (recency.Last is { } last)
                Remove(last);
    }
}

/// <summary>A cache key: the lower-cased wire name plus type, class and the DO and CD bits that change the answer.</summary>
internal sealed class DnsCacheKey : IEquatable<DnsCacheKey>
{
    readonly byte[] name;
    readonly int hash;

    public DnsCacheKey(DnsQuery query)
    {
        name = query.Name.ToArray();
        DnsName.ToLower(name);
        Type = query.Type;
        Class = query.Class;
        Variant = (byte)((query.DnssecOk ? 1 : 0) | (query.CheckingDisabled ? 2 : 0));
        var h = new HashCode();
        h.AddBytes(name);
        h.Add(Type);
        h.Add(Class);
        h.Add(Variant);
        hash = h.ToHashCode();
    }

    public ushort Type { get; }
    public ushort Class { get; }
    public byte Variant { get; }

    public bool Equals(DnsCacheKey? other) =>
        other is not null && other.hash == hash && other.Type == Type && other.Class == Class && other.Variant == Variant
        && other.name.AsSpan().SequenceEqual(name);

    public override bool Equals(object? obj) => Equals(obj as DnsCacheKey);
    public override int GetHashCode() => hash;

    /// <summary>Zeroes the name (after the key left the dictionary: its hash no longer matters).</summary>
    public void Clear() => CryptographicOperations.ZeroMemory(name);
}
