using System.Reflection;
using System.Security.Cryptography;
using Tabula.Packaging;
using Tabula.Packaging.Crypto;

namespace Tabula.Fuzz.Targets;

/// <summary>
/// Sigsum proof text. An accepted proof has fields of the sizes the format fixes, and the verifier answers it
/// (a refusal reason or success) against the shared test policy without throwing.
/// </summary>
public static class SigsumProofTarget
{
    static readonly SigsumPolicy Policy = LoadPolicy();
    // tests/vectors/st-upstream/sigsum-rs/hello-sigsum.*: the corpus seed is the real proof of this message by this key,
    // so mutations that keep the leaf reach the tree head, cosignature and inclusion checks.
    static readonly byte[] SubmitterKey = Convert.FromHexString("99ed58583e8750b20548e69df4a4e1a592379a9a66c51cd32e42fbe4e1bde78a");
    static readonly byte[] Message = SHA256.HashData("Hello, Sigsum!\n"u8);

    public static bool Fuzz(ReadOnlySpan<byte> input)
    {
        SigsumProof proof;
        try { proof = SigsumProof.Parse(input); }
        catch (PackageFormatException) { return false; }

        FuzzFinding.Check(proof.LogKeyHash.Length == 32 && proof.LeafKeyHash.Length == 32 && proof.RootHash.Length == 32
            && proof.LeafSignature.Length == Ed25519.SignatureSize && proof.TreeHeadSignature.Length == Ed25519.SignatureSize
            && proof.NodeHashes.All(h => h.Length == 32) && proof.Cosignatures.All(c => c.KeyHash.Length == 32 && c.Signature.Length == Ed25519.SignatureSize),
            "Sigsum proof: a field of the wrong size accepted", input);
        _ = SigsumVerifier.Verify(proof, Message, SubmitterKey, Policy);
        return true;
    }

    static SigsumPolicy LoadPolicy()
    {
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream("sigsum-test.policy")
            ?? throw new InvalidOperationException("the embedded Sigsum test policy is missing");
        var buffer = new MemoryStream();
        stream.CopyTo(buffer);
        return SigsumPolicy.Parse(buffer.ToArray());
    }
}
