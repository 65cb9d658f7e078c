using System.Diagnostics;
using Tabula.Boot.Measuring;
using Tabula.Linux;
using Tabula.Packaging;
using Tabula.Tpm;
using Tabula.Tpm.Measurements;

namespace Tabula.Boot.States;

/// <summary>
/// Measured boot (issue 19), after the package verified (and was found fresh) and before it is staged: extends the TPM's
/// SHA-256 PCRs 12, 13 and 14 with System Transparency's layout (<see cref="BootMeasurements.Due"/>) and keeps the event
/// log, which goes to the OS beside the hand-over (<see cref="HandoverMeasurement"/>). Each event's digest is exactly the
/// one extended, so the log replays to the PCRs. Without a TPM, or when it refuses a command: under
/// <c>tabula_measured_boot: required</c> the round fails (<see cref="FailureReason.MeasurementFailed"/>) and stboot
/// waits and retries like after any failure; otherwise (optional, or no key: upstream's best effort) it prints
/// <c>UNMEASURED</c>, says so in the hand-over and boots.
/// </summary>
internal sealed class Measure(FetchedPackage package) : BootState
{
    public override string Name => "measure";

    public override Transition Run(BootContext context)
    {
        var clock = Stopwatch.StartNew();
        var configuration = context.Configuration!;
        var measurements = context.Measurements;
        bool required = configuration.Trust.Policy.MeasuredBoot == MeasuredBootMode.Required;
        IReadOnlyList<MeasuredEvent> due;
        try
        {
            due = measurements.Due(configuration, ReadPolicy(context), package, context.Freshness?.Ticket, context.Platform);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or PackageFormatException)
        {
            return NotMeasured(context, clock, required, $"trust policy: {e.Message}");
        }

        Tpm2? tpm;
        try { tpm = context.Environment.OpenTpm(); }
        catch (Exception e) when (e is LinuxException or TpmException) { return NotMeasured(context, clock, required, $"TPM device: {e.Message}"); }
        if (tpm is null)
            return NotMeasured(context, clock, required, "no TPM (/dev/tpmrm0, /dev/tpm0)");
        using (tpm)
        {
            try
            {
                tpm.Startup();   // false when the firmware started it already
                foreach (var measured in due)
                {
                    tpm.PcrExtendSha256(measured.Pcr, measured.Sha256);
                    measurements.Extended(measured);
                }
            }
            catch (TpmException e)
            {
                return NotMeasured(context, clock, required, $"TPM: {e.Message}");
            }
        }
        if (due.Any(BootMeasurements.IsConfigurationEvent))
            measurements.ConfigurationDone();
        var log = measurements.Log;
        context.Measurement = HandoverMeasurement.Of(true, null, log.ToBytes());
        var pcrs = log.Replay();
        context.Log.StageDone(Name, clock.Elapsed,
            $"events={due.Count} log_events={log.Events.Count} "
            + string.Join(' ', pcrs.Select(p => $"pcr{p.Key}={Convert.ToHexStringLower(p.Value)}"))
            + $" event_log_sha256={context.Measurement.EventLogSha256!.Value.Hex}");
        return Transition.To(new StageKexec(package));
    }

    Transition NotMeasured(BootContext context, Stopwatch clock, bool required, string detail)
    {
        if (required)
        {
            package.Dispose();
            return Transition.To(new Recover(new BootFailure(Name, FailureReason.MeasurementFailed, detail, package.DescriptorUrl), new FetchPackage(0)));
        }
        var log = context.Measurements.Log;
        context.Measurement = HandoverMeasurement.Of(false, detail, log.Events.Count == 0 ? null : log.ToBytes());
        context.Log.Unmeasured(detail);
        context.Log.StageDone(Name, clock.Elapsed, $"measured=no log_events={log.Events.Count}");
        return Transition.To(new StageKexec(package));
    }

    static byte[] ReadPolicy(BootContext context)
    {
        string folder = context.Environment.PathOf(LoadConfiguration.TrustPolicyDirectory);
        string path = Path.Combine(folder, TrustPolicyFolder.PolicyFile);
        if (!File.Exists(path))
            path = Path.Combine(folder, TrustPolicyFolder.LegacyPolicyFile);
        return TrustPolicyFolder.ReadLimited(path, Packaging.Limits.MaxConfigJsonBytes);
    }
}
