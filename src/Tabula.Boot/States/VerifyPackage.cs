using System.Diagnostics;
using Tabula.Packaging;

namespace Tabula.Boot.States;

/// <summary>
/// Counts independent valid signers of the archive digest against the trust policy (Tabula.Packaging's
/// <see cref="PackageVerifier"/>: roots, threshold, Sigsum when configured; certificate validity at the machine's
/// clock, as upstream). Each rejected signature is printed with its code; a refused package from pointer i makes
/// pointer i+1 be tried (mirrors carry no trust), the last one ends the round.
/// </summary>
internal sealed class VerifyPackage(FetchedPackage package) : BootState
{
    public override string Name => "verify";

    public override Transition Run(BootContext context)
    {
        var clock = Stopwatch.StartNew();
        var configuration = context.Configuration!;
        VerifyResult result = PackageVerifier.Verify(package.Descriptor, package.Sha256.Bytes,
            configuration.Trust.ToVerificationPolicy(), context.Environment.Time.GetUtcNow());
        foreach (var check in result.Checks.Where(c => !c.Valid))
            context.Log.SignatureRejected(check.Index, new SignatureRejectionText(check.Rejection!.Value.ToString(), check.Reason));
        if (!result.Accepted)
        {
            var rejections = result.Checks.Where(c => !c.Valid).Select(c => $"#{c.Index} {c.Rejection}");
            var failure = new BootFailure(Name, FailureReason.SignaturesRefused,
                $"not enough valid signatures: {result.Summary}; ospkg_sha256={package.Sha256.Hex}; rejected: {string.Join(", ", rejections)}",
                package.DescriptorUrl);
            int next = package.PointerIndex + 1;
            bool more = package.Source == FetchMethod.Network && next < configuration.Host.OsPackagePointers.Count;
            package.Dispose();
            if (more)
            {
                context.Log.SourceFailed(failure);
                return Transition.To(new FetchPackage(next));
            }
            return Transition.To(new Recover(failure, new FetchPackage(0)));
        }
        context.Log.Verified(package.DescriptorUrl ?? "", package.Sha256.Hex, result.Summary);
        context.Log.StageDone(Name, clock.Elapsed, $"signatures=\"{result.Summary}\"");
        return Transition.To(configuration.Trust.Policy.Freshness is null ? new Measure(package) : new CheckFreshness(package));
    }
}
