using System.Diagnostics;
using System.Globalization;
using Tabula.Machine.Init;
using Tabula.Machine.Reporting;
using Tabula.Relay.Sync;

namespace Tabula.Relay;

/// <summary>
/// Every message the agent prints, in one place so its privacy rule can be checked by reading one file: no customer
/// key, customer address, endpoint or handshake time ever appears — methods take counts, stage names, machine ids and
/// error reasons only. Lines are the machine layer's format (<see cref="ConsoleLine"/>: <c>tabula-relay: KEY t=MSms
/// detail</c>, the same as stboot's); they go to the console (the serial console is the operator's view) and into a
/// bounded ring in RAM (the newest <see cref="Capacity"/> lines) for the health report's "last error"; nothing is
/// written to a file.
/// </summary>
public sealed class RelayLog(TextWriter console, TimeProvider time, int capacity = 512) : IStageReporter
{
    readonly ConsoleWriter writer = new(ConsoleLine.Relay, console, time, capacity);

    public int Capacity => capacity;

    /// <summary>The lines still held in RAM, oldest first.</summary>
    public IReadOnlyList<string> Recent() => writer.Recent();

    static string Ms(TimeSpan t) => ((long)t.TotalMilliseconds).ToString(CultureInfo.InvariantCulture) + "ms";

    public void Started(string version) => writer.Write("stage:start", $"version={version} pid={Environment.ProcessId}");

    public void StageDone(string stage, TimeSpan elapsed, string detail) =>
        writer.Write($"stage:{stage}", $"took={Ms(elapsed)} {detail}".TrimEnd());

    public void StageFailed(string stage, string reason, string detail) =>
        writer.Write("FAILED", $"stage={stage} reason={reason} detail=\"{detail.Replace('"', '\'')}\"");

    public void Note(string stage, string detail) => writer.Write($"note:{stage}", detail);

    public void Amnesia(string fact) => writer.Write("amnesia", fact);

    public void Fingerprint(string machineId, string fingerprint, string state) =>
        writer.Write("enroll", $"machine={machineId} fingerprint={fingerprint} state={state} (staff compare the fingerprint on the dashboard)");

    public void Waiting(string state, TimeSpan waited) =>
        writer.Write("wait", $"state={state} waited={waited.TotalSeconds:0}s (waiting for staff to provision)");

    public void Serving(string iface, int port, int peers, long revision) =>
        writer.Write("serve", $"interface={iface} port={port} peers={peers} revision={revision}");

    public void Snapshot(long revision, int peers, TimeSpan elapsed) =>
        writer.Write("sync", $"snapshot revision={revision} peers={peers} took={Ms(elapsed)}");

    /// <summary>The device serves part of the set (counts and a reason word only): printed after a snapshot that left it partial.</summary>
    public void Partial(int wanted, int applied, int pending, int outsidePool, int peerLimit, string reason) =>
        writer.Write("sync", $"partial wanted={wanted} applied={applied} pending={pending} outside_pool={outsidePool} peer_limit={peerLimit} reason={reason}");

    public void Resubscribe(string reason, long from, TimeSpan delay) =>
        writer.Write("sync", $"resubscribe from={from} in={delay.TotalSeconds:0.0}s reason=\"{reason.Replace('"', '\'')}\"");

    /// <summary>
    /// Totals only. There is no line per device change (not even its revision): when each device came or went is a
    /// customer's business; the peer stream's adds and removes, the connections flushed and the endpoints forgotten
    /// appear here as counts since start.
    /// </summary>
    public void Health(int peers, int handshakesLastMinute, ulong rxBytes, ulong txBytes, PeerSyncCounters sync, long forgotten, PeerSyncStatus status) =>
        writer.Write("health", $"peers={peers} handshakes_1m={handshakesLastMinute} rx={rxBytes} tx={txBytes} " +
            $"added={sync.Added} removed={sync.Removed} flushed={sync.ConnectionsFlushed} flush_failed={sync.FlushFailures} forgotten={forgotten}" +
            (status.Partial ? $" wanted={status.Wanted} pending={status.Pending} outside_pool={status.OutsidePool} partial={status.PartialReason}" : ""));

    /// <summary>The egress totals: forwarded, dropped by isolation, NAT entries, DNS answers; never a name or address.</summary>
    public void EgressCounters(ulong forwardedPackets, ulong forwardedBytes, ulong isolationDropped, int natEntries, long dnsAnswered) =>
        writer.Write("egress", $"forwarded_packets={forwardedPackets} forwarded_bytes={forwardedBytes} isolation_dropped={isolationDropped} nat={natEntries} dns_answered={dnsAnswered}");

    public void Fatal(string detail) => writer.Write("FATAL", $"{detail} (PID 1 keeps running)");

    /// <summary>Times a stage for <see cref="StageDone"/>.</summary>
    public static Stopwatch Clock() => Stopwatch.StartNew();
}
