using Tabula.Tpm.Measurements;

namespace Tabula.Fuzz.Targets;

/// <summary>
/// A TCG crypto-agile event log (Tabula.Tpm EventLog), as the controller and a customer's <c>relay attest</c> read one
/// sent by a relay. An accepted log has events in PCRs 0–23 with 32-byte digests and data within the limit; written
/// again it parses to the same events and replays to the same PCR values.
/// </summary>
public static class EventLogTarget
{
    public static bool Fuzz(ReadOnlySpan<byte> input)
    {
        EventLog log;
        try { log = EventLog.Parse(input); }
        catch (EventLogException) { return false; }

        foreach (var e in log.Events)
            FuzzFinding.Check(e.Pcr is >= 0 and < EventLog.PcrCount && e.Sha256.Length == 32 && e.Data.Length <= EventLogLimits.MaxEventDataBytes,
                "event log: an accepted event is out of range", input);
        FuzzFinding.Check(log.Events.Count < EventLogLimits.MaxEvents, "event log: more events than the limit", input);
        var replay = log.Replay();

        EventLog again;
        try { again = EventLog.Parse(log.ToBytes()); }
        catch (EventLogException e) { FuzzFinding.Fail($"event log: what the writer wrote does not parse ({e.Error})", input); return false; }
        FuzzFinding.Check(again.Events.SequenceEqual(log.Events), "event log: parse, write, parse changed the events", input);
        var replayAgain = again.Replay();
        FuzzFinding.Check(replay.Count == replayAgain.Count && replay.All(p => replayAgain[p.Key].AsSpan().SequenceEqual(p.Value)),
            "event log: the written log replays to other PCR values", input);
        return true;
    }
}
