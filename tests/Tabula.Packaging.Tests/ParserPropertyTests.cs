using System.Text;
using CsCheck;

namespace Tabula.Packaging.Tests;

/// <summary>
/// Property tests over every parser: for random bytes, and for valid inputs with random bytes
/// changed, inserted or cut off, a parser either succeeds or throws PackageFormatException, never
/// anything else (no IndexOutOfRange, no JsonException leaking, no hang).
/// </summary>
public sealed class ParserPropertyTests
{
    private const long Iterations = 1500;

    private static readonly (string Name, Action<byte[]> Parse)[] Parsers =
    [
        ("descriptor", b => Descriptor.Parse(b)),
        ("manifest", b => Manifest.Parse(b)),
        ("host config", b => HostConfig.Parse(b)),
        ("trust policy", b => TrustPolicy.Parse(b)),
        ("handover", b => HandoverRecord.Parse(b)),
        ("PEM", b => Pem.ReadAll(b)),
        ("certificate DER", b => Certificate.Parse(b)),
        ("certificate bundle", b => Certificate.ParsePemBundle(b)),
        ("Sigsum proof", b => SigsumProof.Parse(b)),
        ("Sigsum policy", b => SigsumPolicy.Parse(b)),
        ("PKCS#8 key", b => Crypto.Ed25519Keys.FromPkcs8Pem(b)),
        ("archive", b => { using var a = OsPackageArchive.Open(new MemoryStream(b)); a.ExtractKernel(Stream.Null); a.ExtractInitramfs(Stream.Null); }),
    ];

    private static readonly Lazy<Dictionary<string, byte[]>> Seeds = new(() =>
    {
        var root = TestPki.Root();
        var archive = TestPki.Archive(2000);
        var descriptor = TestPki.Sign(Descriptor.Unsigned("os.zip"), archive, TestPki.Leaf(root), TestPki.Leaf(root));
        return new()
        {
            ["descriptor"] = descriptor.ToJson(),
            ["manifest"] = new Manifest("l", "boot/k", "boot/i", "console=ttyS0").ToJson(),
            ["host config"] = Vectors.Read("st-upstream/stmgr-v0.6.6/hostconfigs/compat-1.txt"),
            ["trust policy"] = Vectors.Read("st-upstream/stboot-v0.2.x/opts-testdata/trust_policy_good_all_set.json"),
            ["handover"] = new HandoverRecord(Sha256Digest.Of(archive.Bytes), FetchMethod.Network, "https://x/os.json", "efivar:STHostConfig",
                """{"network_mode":"dhcp","ospkg_pointer":"https://x/os.json","tabula_relay":{"enrollment_token":"t"}}"""u8.ToArray()).ToJson(),
            ["PEM"] = Encoding.ASCII.GetBytes(root.CertificatePem),
            ["certificate DER"] = root.Certificate.Der,
            ["certificate bundle"] = Vectors.Read("st-upstream/stboot-v0.2.x/opts-testdata/certs.pem"),
            ["Sigsum proof"] = Vectors.Read("st-upstream/sigsum-rs/hello-sigsum.proof"),
            ["Sigsum policy"] = Vectors.Read("st-upstream/sigsum-rs/sigsum-test-2025-3.builtin-policy"),
            ["PKCS#8 key"] = Encoding.ASCII.GetBytes(Crypto.Ed25519Keys.ToPkcs8Pem(root.PrivateKey)),
            ["archive"] = archive.Bytes,
        };
    });

    private static void OnlyTypedErrors(string name, Action<byte[]> parse, byte[] input)
    {
        try { parse(input); }
        catch (PackageFormatException) { }
        catch (Exception e)
        {
            throw new Xunit.Sdk.XunitException($"{name} parser threw {e.GetType().Name} for {input.Length} bytes: {e.Message}\n{Convert.ToBase64String(input[..Math.Min(input.Length, 512)])}");
        }
    }

    public static TheoryData<string> ParserNames => [.. Parsers.Select(p => p.Name)];

    [Theory, MemberData(nameof(ParserNames))]
    public void Random_bytes_give_only_typed_errors(string name)
    {
        var parse = Parsers.Single(p => p.Name == name).Parse;
        Gen.Byte.Array[0, 600].Sample(bytes => OnlyTypedErrors(name, parse, bytes), iter: Iterations);
    }

    /// <summary>A valid seed with a few bytes replaced, a slice removed, or cut short.</summary>
    private static Gen<byte[]> Mutations(byte[] seed) =>
        Gen.OneOf(
            Gen.Select(Gen.Int[1, 8], Gen.Int[0, seed.Length - 1].Array[8], Gen.Byte.Array[8], (n, at, value) =>
            {
                var copy = (byte[])seed.Clone();
                for (int i = 0; i < n; i++) copy[at[i]] = value[i];
                return copy;
            }),
            Gen.Select(Gen.Int[0, seed.Length - 1], Gen.Int[1, 64], (at, length) =>
                seed.Take(at).Concat(seed.Skip(Math.Min(seed.Length, at + length))).ToArray()),
            Gen.Int[0, seed.Length - 1].Select(length => seed[..length]));

    [Theory, MemberData(nameof(ParserNames))]
    public void Mutated_valid_inputs_give_only_typed_errors(string name)
    {
        var parse = Parsers.Single(p => p.Name == name).Parse;
        byte[] seed = Seeds.Value[name];
        parse(seed); // the seed itself is valid
        Mutations(seed).Sample(bytes => OnlyTypedErrors(name, parse, bytes), iter: Iterations);
    }

    [Fact]
    public void Verifier_never_throws_on_mutated_descriptors_that_parse()
    {
        var root = TestPki.Root();
        var archive = TestPki.Archive(1000);
        byte[] seed = TestPki.Sign(Descriptor.Unsigned("os.zip"), archive, TestPki.Leaf(root), TestPki.Leaf(root)).ToJson();
        var policy = TestPki.Policy(2, root);
        Mutations(seed).Sample(bytes =>
        {
            Descriptor d;
            try { d = Descriptor.Parse(bytes); }
            catch (PackageFormatException) { return; }
            var result = PackageVerifier.Verify(d, archive.Sha256, policy, TestPki.Now);
            Assert.Equal(d.Count, result.Checks.Count);
            Assert.True(result.Valid <= 2);
        }, iter: Iterations);
    }

    [Fact]
    public void Descriptor_json_round_trips_for_any_entries()
    {
        Gen.Select(Gen.String[0, 40], Gen.String[0, 60].Array[0, 5]).Sample((url, entries) =>
        {
            var d = new Descriptor(url, entries, entries);
            var back = Descriptor.Parse(d.ToJson());
            Assert.Equal(url, back.OsPackageUrl);
            Assert.Equal(entries, back.Certificates);
        }, iter: 500);
    }
}
