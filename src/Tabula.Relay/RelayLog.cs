using System.Diagnostics;

namespace Tabula.Relay;

/// <summary>
/// Every message the agent prints, in one place so its privacy rule can be checked by reading one file: no customer
/// key, customer address, endpoint or handshake time ever appears — methods take counts, stage names, machine ids and
/// error reasons only. Lines go to the console (the serial console is the operator's view) and into a bounded ring in
/// RAM (the newest <see cref="Capacity"/> lines) for the health report's "last error"; nothing is written to a file.
/// </summary>
public sealed class RelayLog(TextWriter console, TimeProvider time, int capacity = 512)
{
    readonly Queue<string> ring = new(capacity);
    readonly long started = time.GetTimestamp();
    readonly Lock gate = new();

    public int Capacity => capacity;

    /// <summary>The lines still held in RAM, oldest first.</summary>
    public IReadOnlyList<string> Recent()
    {
        lock (gate) return [.. ring];
    }

    void Write(string text)
    {
        string line = $"[{time.GetElapsedTime(started).TotalSeconds,9:0.000}] relay: {text}";
        lock (gate)
        {
            if (ring.Count == capacity) ring.Dequeue();
            ring.Enqueue(line);
            console.WriteLine(line);
            console.Flush();
        }
    }

    public void Started(string version) => Write($"tabula-relay {version} starting (pid {Environment.ProcessId})");

    public void StageDone(string stage, TimeSpan elapsed, string detail) =>
        Write($"stage={stage} ok {elapsed.TotalSeconds:0.000}s {detail}".TrimEnd());

    public void StageFailed(string stage, string reason, string detail) => Write($"stage={stage} FAILED reason={reason}: {detail}");

    public void Note(string stage, string detail) => Write($"stage={stage} {detail}");

    public void Amnesia(string fact) => Write($"stage=amnesia {fact}");

    public void Fingerprint(string machineId, string fingerprint, string state) =>
        Write($"stage=enroll machine={machineId} fingerprint={fingerprint} state={state} (staff compare the fingerprint on the dashboard)");

    public void Waiting(string state, TimeSpan waited) => Write($"stage=wait state={state} waiting for staff to provision ({waited.TotalSeconds:0}s)");

    public void Serving(string iface, int port, int peers, long revision) =>
        Write($"stage=serve interface={iface} port={port} peers={peers} revision={revision}");

    public void Snapshot(long revision, int peers, TimeSpan elapsed) =>
        Write($"stage=sync snapshot revision={revision} peers={peers} applied in {elapsed.TotalMilliseconds:0}ms");

    /// <summary>A delta: its kind and revision, never the key or addresses it carried.</summary>
    public void Delta(string kind, long revision, int peers, TimeSpan elapsed) =>
        Write($"stage=sync {kind} revision={revision} peers={peers} applied in {elapsed.TotalMilliseconds:0.0}ms");

    public void Resubscribe(string reason, long from, TimeSpan delay) =>
        Write($"stage=sync resubscribe from={from} in {delay.TotalSeconds:0.0}s: {reason}");

    public void Health(int peers, int handshakesLastMinute, ulong rxBytes, ulong txBytes) =>
        Write($"stage=health peers={peers} handshakes_1m={handshakesLastMinute} rx={rxBytes} tx={txBytes}");

    public void Fatal(string detail) => Write($"FATAL {detail} (PID 1 keeps running)");

    /// <summary>Times a stage for <see cref="StageDone"/>.</summary>
    public static Stopwatch Clock() => Stopwatch.StartNew();
}
