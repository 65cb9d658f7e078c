using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json;
using Tabula.Fleet.Api;
using Tabula.Fleet.Core;
using Tabula.Fleet.Protocol;
using Tabula.Packaging.Crypto;

namespace Tabula.Fleet.Tests.Support;

/// <summary>
/// What a relay agent does, over real HTTP: enroll with a signed nonce, then follow the peer stream and
/// check every line the way the real agent must (dense revisions, running set hash).
/// </summary>
public sealed class TestRelay
{
    private readonly byte[] identity = Ed25519.NewPrivateKey();
    public string MachineId => Enrollment.MachineId(Ed25519.PublicKeyOf(identity));
    /// <summary>The identity's private key (what stboot signs its ticket requests with, from the host configuration).</summary>
    public byte[] IdentityPrivate => identity;
    public string RelayToken { get; private set; } = "";
    public byte[] WireGuardKey { get; private set; } = [];

    public static async Task<byte[]> NonceAsync(HttpClient anonymous, string enrollmentToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/relay/v1/enroll/nonce");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", enrollmentToken);
        using var response = await anonymous.SendAsync(request);
        response.EnsureSuccessStatusCode();
        var nonce = await response.Content.ReadFromJsonAsync(FleetJson.Default.NonceResponse);
        return Convert.FromHexString(nonce!.Nonce);
    }

    public EnrollBody Body(byte[] nonce, string digest, byte[]? signWith = null, FreshnessReport? freshness = null)
    {
        WireGuardKey = RandomNumberGenerator.GetBytes(32);   // a new key at every boot
        byte[] signature = Ed25519.Sign(signWith ?? identity, Enrollment.Message(nonce, WireGuardKey, digest));
        return new EnrollBody(Convert.ToBase64String(Ed25519.PublicKeyOf(identity)), Convert.ToBase64String(WireGuardKey), digest,
            Convert.ToHexStringLower(nonce), Convert.ToBase64String(signature), freshness);
    }

    public static async Task<HttpResponseMessage> PostEnrollAsync(HttpClient anonymous, string enrollmentToken, EnrollBody body)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/relay/v1/enroll")
        {
            Content = JsonContent.Create(body, FleetJson.Default.EnrollBody),
        };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", enrollmentToken);
        return await anonymous.SendAsync(request);
    }

    public async Task<EnrollResponse> EnrollAsync(HttpClient anonymous, string enrollmentToken, string digest, FreshnessReport? freshness = null)
    {
        byte[] nonce = await NonceAsync(anonymous, enrollmentToken);
        using var response = await PostEnrollAsync(anonymous, enrollmentToken, Body(nonce, digest, freshness: freshness));
        response.EnsureSuccessStatusCode();
        var enrolled = (await response.Content.ReadFromJsonAsync(FleetJson.Default.EnrollResponse))!;
        RelayToken = enrolled.RelayToken;
        return enrolled;
    }
}

/// <summary>
/// A relay's view of the peer set, built only from stream lines. Throws (faulting <see cref="Run"/>) on a
/// gap, a duplicate, or a hash mismatch, so a test that waits for a revision also proves the stream was sound.
/// </summary>
public sealed class PeerFollower : IAsyncDisposable
{
    private readonly Dictionary<string, (string V4, string V6)> peers = [];
    private byte[] hash = new byte[32];
    private CancellationTokenSource stop = new();
    private long applied;
    private TaskCompletionSource progressed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    public long Applied => Interlocked.Read(ref applied);
    public int Snapshots { get; private set; }
    /// <summary>The revision the last snapshot ended at (deltas follow from the next one).</summary>
    public long SnapshotRevision { get; private set; }
    public int Deltas { get; private set; }
    public List<long> DeltaRevisions { get; } = [];
    public Task Run { get; private set; } = Task.CompletedTask;
    public IReadOnlyDictionary<string, (string V4, string V6)> Peers => peers;
    public string Hash => Convert.ToHexStringLower(hash);

    public static PeerFollower Start(HttpClient client, string relayToken, long from = 0)
    {
        var follower = new PeerFollower { applied = from };
        follower.Run = Task.Run(() => follower.FollowAsync(client, relayToken, from));
        return follower;
    }

    /// <summary>Connects again from the last applied revision, as an agent does after a disconnect.</summary>
    public void Resume(HttpClient client, string relayToken)
    {
        stop = new CancellationTokenSource();
        long from = Applied;
        Run = Task.Run(() => FollowAsync(client, relayToken, from));
    }

    private async Task FollowAsync(HttpClient client, string relayToken, long from)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/relay/v1/peers?from={from}");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", relayToken);
        try
        {
            using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, stop.Token);
            response.EnsureSuccessStatusCode();
            var reader = new PeerLineReader(await response.Content.ReadAsStreamAsync(stop.Token), TimeSpan.FromMinutes(5));
            bool inSnapshot = false;
            while (await reader.ReadAsync(stop.Token) is { } line)
            {
                switch (line.Type)
                {
                    case PeerLineType.Snapshot:
                        peers.Clear(); hash = new byte[32]; inSnapshot = true; break;
                    case PeerLineType.Peer:
                        if (!inSnapshot) throw new InvalidDataException("peer line outside a snapshot");
                        Apply(line, add: true); break;
                    case PeerLineType.SnapshotEnd:
                        if (!hash.AsSpan().SequenceEqual(line.Hash)) throw new InvalidDataException("snapshot hash mismatch");
                        inSnapshot = false; Snapshots++; SnapshotRevision = line.Revision; Advance(line.Revision); break;
                    case PeerLineType.Add or PeerLineType.Remove:
                        long revision = line.Revision;
                        if (revision != Applied + 1) throw new InvalidDataException($"delta {revision} after {Applied}: gap or duplicate");
                        Apply(line, add: line.Type == PeerLineType.Add);
                        if (!hash.AsSpan().SequenceEqual(line.Hash)) throw new InvalidDataException($"hash mismatch at {revision}");
                        Deltas++; DeltaRevisions.Add(revision); Advance(revision); break;
                    case PeerLineType.Heartbeat: break;
                }
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested) { }
        catch (HttpRequestException) { }   // the controller went away: Resume() reconnects
        catch (IOException) { }
    }

    private void Apply(PeerLine line, bool add)
    {
        if (!line.HasPeer) throw new InvalidDataException("a peer line without its peer");
        string key = line.PublicKey.ToBase64(), v4 = line.Ipv4.ToString(), v6 = line.Ipv6.ToString();
        PeerSetHash.Toggle(hash, line.PublicKey.Bytes, line.Ipv4, line.Ipv6);
        if (add && !peers.TryAdd(key, (v4, v6))) throw new InvalidDataException("added a key twice");
        if (!add && !peers.Remove(key)) throw new InvalidDataException("removed an unknown key");
    }

    private void Advance(long revision)
    {
        Interlocked.Exchange(ref applied, revision);
        Interlocked.Exchange(ref progressed, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
    }

    public async Task WaitForAsync(long revision, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(20));
        while (Applied < revision)
        {
            if (Run.IsCompleted) await Run;   // surfaces a stream error
            var signal = Volatile.Read(ref progressed).Task;
            if (Applied >= revision) break;
            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero) throw new TimeoutException($"relay at revision {Applied}, waited for {revision}");
            await Task.WhenAny(signal, Task.Delay(left < TimeSpan.FromMilliseconds(200) ? left : TimeSpan.FromMilliseconds(200)));
        }
    }

    /// <summary>Disconnects, keeping the set (as an agent keeps it in RAM).</summary>
    public ValueTask StopAsync() => DisposeAsync();

    public async ValueTask DisposeAsync()
    {
        await stop.CancelAsync();
        try { await Run; } catch (Exception e) when (e is OperationCanceledException or HttpRequestException or IOException) { }
    }
}
