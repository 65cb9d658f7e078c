using System.Reflection;
using System.Text;
using CsCheck;
using Xunit.Sdk;

namespace Tabula.Fuzz.Tests;

/// <summary>
/// Every fuzz target inside the normal suite: its corpus replayed (seeds named *_good_* must be accepted, *_bad_*
/// refused, none may be a finding), then CsCheck's random bytes and corpus mutations for a bounded count. A target
/// without a test here or without a corpus fails <see cref="Every_target_has_a_test_and_a_corpus"/>.
/// </summary>
public sealed class FuzzTargetTests
{
    /// <summary>Inputs per target and kind (random, mutated); TABULA_FUZZ_ITERATIONS raises it for a longer local run.</summary>
    static readonly long Iterations = long.TryParse(Environment.GetEnvironmentVariable("TABULA_FUZZ_ITERATIONS"), out long n) && n > 0 ? n : 2000;

    [Fact]
    public void Every_target_has_a_test_and_a_corpus()
    {
        var missing = new StringBuilder();
        foreach (var target in Enum.GetValues<FuzzTarget>())
        {
            var method = typeof(FuzzTargetTests).GetMethod(target.ToString(), BindingFlags.Public | BindingFlags.Instance);
            if (method?.GetCustomAttribute<FactAttribute>() is null)
                missing.AppendLine($"{target}: no [Fact] public void {target}() in {nameof(FuzzTargetTests)}");
            var seeds = Corpus.Of(target);
            if (!seeds.Any(s => s.Name.Contains("_good_", StringComparison.Ordinal)))
                missing.AppendLine($"{target}: no *_good_* seed in {Corpus.DirectoryOf(target)}");
            foreach (var (name, bytes) in seeds.Where(s => s.Bytes.Length > Corpus.MaxSeedBytes))
                missing.AppendLine($"{target}: seed {name} is {bytes.Length} bytes, over {Corpus.MaxSeedBytes}");
        }
        Assert.True(missing.Length == 0, missing.ToString());
    }

    [Fact] public void Descriptor() => Run(FuzzTarget.Descriptor);
    [Fact] public void Manifest() => Run(FuzzTarget.Manifest);
    [Fact] public void OsPackageArchive() => Run(FuzzTarget.OsPackageArchive);
    [Fact] public void Certificate() => Run(FuzzTarget.Certificate);
    [Fact] public void Pem() => Run(FuzzTarget.Pem);
    [Fact] public void HostConfig() => Run(FuzzTarget.HostConfig);
    [Fact] public void TrustPolicy() => Run(FuzzTarget.TrustPolicy);
    [Fact] public void SigsumProof() => Run(FuzzTarget.SigsumProof);
    [Fact] public void SigsumPolicy() => Run(FuzzTarget.SigsumPolicy);
    [Fact] public void Handover() => Run(FuzzTarget.Handover);
    [Fact] public void DhcpMessage() => Run(FuzzTarget.DhcpMessage);
    [Fact] public void RouteNetlink() => Run(FuzzTarget.RouteNetlink);
    [Fact] public void WireGuardNetlink() => Run(FuzzTarget.WireGuardNetlink);
    [Fact] public void WireGuardUapi() => Run(FuzzTarget.WireGuardUapi);
    [Fact] public void PeerLine() => Run(FuzzTarget.PeerLine);
    [Fact] public void ModuleIndex() => Run(FuzzTarget.ModuleIndex);
    [Fact] public void BootTicket() => Run(FuzzTarget.BootTicket);
    [Fact] public void TicketRequest() => Run(FuzzTarget.TicketRequest);
    [Fact] public void DnsMessage() => Run(FuzzTarget.DnsMessage);
    [Fact] public void NfTablesNetlink() => Run(FuzzTarget.NfTablesNetlink);
    [Fact] public void ConntrackNetlink() => Run(FuzzTarget.ConntrackNetlink);
    [Fact] public void RelayConfig() => Run(FuzzTarget.RelayConfig);
    [Fact] public void EventLog() => Run(FuzzTarget.EventLog);
    [Fact] public void OvmfVariableStore() => Run(FuzzTarget.OvmfVariableStore);
    [Fact] public void PlatformMeasurement() => Run(FuzzTarget.PlatformMeasurement);
    [Fact] public void TpmResponse() => Run(FuzzTarget.TpmResponse);

    static void Run(FuzzTarget target)
    {
        var fuzz = FuzzTargets.Of(target);
        var seeds = Corpus.Of(target);
        Assert.NotEmpty(seeds);
        foreach (var (name, bytes) in seeds)
        {
            bool accepted = Call(target, fuzz, bytes, name);
            if (name.Contains("_good_", StringComparison.Ordinal))
                Assert.True(accepted, $"{target}: corpus seed {name} should be accepted");
            if (name.Contains("_bad_", StringComparison.Ordinal))
                Assert.False(accepted, $"{target}: corpus seed {name} should be refused");
        }
        Inputs.RandomBytes.Sample(bytes => { Call(target, fuzz, bytes, "random bytes"); }, iter: Iterations, threads: 1);
        Inputs.Mutations([.. seeds.Select(s => s.Bytes)]).Sample(bytes => { Call(target, fuzz, bytes, "mutated seed"); }, iter: Iterations, threads: 1);
    }

    /// <summary>The target's verdict; a finding fails with the input in hex, which is what a corpus file needs.</summary>
    static bool Call(FuzzTarget target, FuzzAction fuzz, byte[] input, string what)
    {
        try { return fuzz(input); }
        catch (Exception e)
        {
            throw new XunitException($"{target} finding on {what} ({input.Length} bytes): {e.GetType().Name}: {e.Message}\n" +
                $"input hex: {Convert.ToHexString(input)}\n{e.StackTrace}");
        }
    }
}
