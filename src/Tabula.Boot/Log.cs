using System.Globalization;
using Tabula.Machine.Reporting;

namespace Tabula.Boot;

/// <summary>
/// Every console line stboot prints, in one place (the [LoggerMessage] idea without the logging framework, which a
/// static PID 1 does not need): one line per event in the machine layer's format (<see cref="ConsoleLine"/>:
/// <c>tabula-boot: KEY t=MSms detail</c>). Audit here that no line carries a secret: URLs are printed through
/// <see cref="Fetch.Urls.Redact"/> (no userinfo), signatures and keys never.
/// </summary>
internal sealed class BootLog(TextWriter console, TimeProvider time)
{
    readonly ConsoleWriter writer = new(ConsoleLine.Boot, console, time);

    void Line(string key, string detail) => writer.Write(key, detail);

    static string Ms(TimeSpan t) => ((long)t.TotalMilliseconds).ToString(CultureInfo.InvariantCulture) + "ms";

    public void Started(string version, string arguments) =>
        Line("stage:start", $"version={version} args=[{arguments}]");

    public void StageDone(string stage, TimeSpan took, string detail) =>
        Line($"stage:{stage}", $"took={Ms(took)} {detail}".TrimEnd());

    public void Note(string stage, string detail) => Line($"note:{stage}", detail);

    public void AttemptFailed(string what, string url, int attempt, int attempts, BootFailure failure) =>
        Line("retry", $"{what} url={url} attempt={attempt}/{attempts} reason={failure.Reason} detail=\"{failure.Detail}\"");

    public void SourceFailed(BootFailure failure) => Line("FAILED", failure.ToString());

    public void RoundFailed(BootFailure failure, int round, int maxRounds, TimeSpan wait) =>
        Line("FAILED", $"{failure} round={round}/{maxRounds} next=retry-in-{Ms(wait)}");

    public void GivingUp(BootFailure failure, int round) =>
        Line("FAILED", $"{failure} round={round} next=reboot");

    public void Verified(string url, string sha256, string summary) =>
        Line("verified", $"url={url} ospkg_sha256={sha256} signatures=\"{summary}\"");

    public void SignatureRejected(int index, SignatureRejectionText rejection) =>
        Line("signature", $"index={index} rejection={rejection.Code} detail=\"{rejection.Detail}\"");

    public void Timeline(IEnumerable<(string Stage, TimeSpan Took)> stages, TimeSpan total, int failedRounds) =>
        Line("timeline", string.Join(' ', stages.Select(s => $"{s.Stage}={Ms(s.Took)}")) + $" total={Ms(total)} failed-rounds={failedRounds}");

    public void Kexec(string cmdline, long kernelBytes, long initramfsBytes) =>
        Line("kexec", $"kernel={kernelBytes}B initramfs={initramfsBytes}B cmdline=\"{cmdline}\"");

    /// <summary><c>freshness … refused reason=NAME fields</c> (freshness design §5; the names are the lab's and the tests').</summary>
    public void FreshnessRefused(Packaging.FreshnessRefusal reason, string detail) =>
        Line("freshness", $"refused reason={Packaging.FreshnessRefusals.Name(reason)} {detail}");

    /// <summary><c>freshness … UNFRESH reason=ticket-unavailable (policy optional)</c>: booting without a ticket.</summary>
    public void Unfresh(Packaging.FreshnessRefusal reason, string detail) =>
        Line("freshness", $"UNFRESH reason={Packaging.FreshnessRefusals.Name(reason)} (policy optional) {detail}");

    /// <summary><c>freshness … fresh release=N class=C floor=F …</c>.</summary>
    public void Fresh(string detail) => Line("freshness", $"fresh {detail}");

    /// <summary><c>measure … UNMEASURED (policy optional) detail="…"</c>: booting without (all) measurements (issue 19).</summary>
    public void Unmeasured(string detail) => Line("measure", $"UNMEASURED (policy optional) detail=\"{detail.ReplaceLineEndings(" ").Replace('"', '\'')}\"");

    public void Restarting(string why) => Line("restart", why);

    public void Fatal(string what) => Line("FATAL", what);
}

/// <summary>A rejected signature for the console: the code and the verifier's one-line reason.</summary>
internal readonly record struct SignatureRejectionText(string Code, string Detail);
