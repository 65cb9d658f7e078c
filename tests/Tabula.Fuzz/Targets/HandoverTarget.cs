using Tabula.Packaging;

namespace Tabula.Fuzz.Targets;

/// <summary>
/// handover.json, stboot's record for the next OS. An accepted record written back (when the writer takes it) and
/// parsed again is the same record, with the host configuration byte for byte and the same freshness object (issue 16:
/// fresh, reason, release, class, and the ticket byte for byte; present in both or in neither), and the same
/// <c>measured_boot</c> (issue 19: measured, detail, the event log's digest; present in both or in neither).
/// </summary>
public static class HandoverTarget
{
    public static bool Fuzz(ReadOnlySpan<byte> input)
    {
        HandoverRecord record;
        try { record = HandoverRecord.Parse(input); }
        catch (PackageFormatException) { return false; }

        byte[] json;
        try { json = record.ToJson(); }
        catch (ArgumentException) { return true; }   // documented: the writer refuses what would not read back (size)
        var again = HandoverRecord.Parse(json);
        FuzzFinding.Check(again.OsPackageSha256 == record.OsPackageSha256 && again.Source == record.Source
            && again.DescriptorUrl == record.DescriptorUrl && again.HostConfigSource == record.HostConfigSource
            && again.HostConfigJson.AsSpan().SequenceEqual(record.HostConfigJson), "handover: parse, write, parse changed it", input);
        FuzzFinding.Check(again.Freshness is null ? record.Freshness is null : again.Freshness.Equals(record.Freshness),
            "handover: parse, write, parse changed its freshness", input);
        FuzzFinding.Check(Equals(again.Platform, record.Platform), "handover: parse, write, parse changed its platform", input);
        FuzzFinding.Check(Equals(again.Measurement, record.Measurement), "handover: parse, write, parse changed its measured_boot", input);
        return true;
    }
}
