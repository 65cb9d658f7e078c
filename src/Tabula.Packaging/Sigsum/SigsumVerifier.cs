using System.Security.Cryptography;
using System.Text;
using Tabula.Packaging.Crypto;

namespace Tabula.Packaging;

/// <summary>
/// Verifies a Sigsum proof for a 32-byte message (for OS packages: SHA-256 of the archive):
/// 1. the leaf is the submitter's signature over the message's checksum;
/// 2. the tree head is signed by a log the policy accepts;
/// 3. cosignatures from known witnesses meet the policy quorum (unknown witnesses are ignored);
/// 4. the RFC 9162 inclusion proof leads from the leaf hash to the signed root hash.
/// Returns null when valid, else the reason.
/// </summary>
public static class SigsumVerifier
{
    /// <summary>Null when <paramref name="proof"/> proves that <paramref name="submitterKey"/> logged <paramref name="message"/>; else why not.</summary>
    public static string? Verify(SigsumProof proof, ReadOnlySpan<byte> message, ReadOnlySpan<byte> submitterKey, SigsumPolicy policy)
    {
        if (message.Length != 32) throw new ArgumentException("a Sigsum message is 32 bytes", nameof(message));
        byte[] checksum = SHA256.HashData(message);
        byte[] submitterKeyHash = SHA256.HashData(submitterKey);
        if (!CryptographicOperations.FixedTimeEquals(submitterKeyHash, proof.LeafKeyHash))
            return "proof leaf was made by another key than the certificate's";
        byte[] leafSigned = [.. "sigsum.org/v1/tree-leaf\0"u8, .. checksum];
        if (!Ed25519.Verify(submitterKey, leafSigned, proof.LeafSignature))
            return "proof leaf signature is invalid";

        string logKeyHashHex = Hex.Encode(proof.LogKeyHash);
        if (!policy.Logs.TryGetValue(logKeyHashHex, out byte[]? logKey))
            return $"proof names log {logKeyHashHex[..16]}…, which the policy does not accept";
        byte[] checkpoint = Encoding.ASCII.GetBytes($"sigsum.org/v1/tree/{logKeyHashHex}\n{proof.Size}\n{Convert.ToBase64String(proof.RootHash)}\n");
        if (!Ed25519.Verify(logKey, checkpoint, proof.TreeHeadSignature))
            return "log signature on the tree head is invalid";

        var cosigned = new HashSet<string>();
        foreach (var cosignature in proof.Cosignatures)
        {
            string keyHashHex = Hex.Encode(cosignature.KeyHash);
            if (!policy.Witnesses.TryGetValue(keyHashHex, out var witness)) continue;
            byte[] signed = [.. Encoding.ASCII.GetBytes($"cosignature/v1\ntime {cosignature.Timestamp}\n"), .. checkpoint];
            if (Ed25519.Verify(witness.PublicKey, signed, cosignature.Signature))
                cosigned.Add(keyHashHex);
        }
        if (!policy.QuorumMet(cosigned))
            return $"witness quorum not met ({cosigned.Count} valid cosignatures from known witnesses)";

        byte[] leafHash = SHA256.HashData([0x00, .. checksum, .. proof.LeafSignature, .. submitterKeyHash]);
        if (!InclusionProofHolds(leafHash, proof.LeafIndex, proof.Size, proof.NodeHashes, proof.RootHash))
            return "inclusion proof does not lead to the signed root hash";
        return null;
    }

    /// <summary>RFC 9162 §2.1.3.2 inclusion proof verification.</summary>
    public static bool InclusionProofHolds(ReadOnlySpan<byte> leafHash, ulong index, ulong size, IReadOnlyList<byte[]> path, ReadOnlySpan<byte> rootHash)
    {
        if (index >= size) return false;
        ulong fn = index, sn = size - 1;
        byte[] r = leafHash.ToArray();
        Span<byte> node = stackalloc byte[65];
        node[0] = 0x01;
        foreach (byte[] p in path)
        {
            if (sn == 0) return false;
            if ((fn & 1) == 1 || fn == sn)
            {
                p.CopyTo(node[1..]);
                r.CopyTo(node[33..]);
                r = SHA256.HashData(node);
                if ((fn & 1) == 0)
                    while ((fn & 1) == 0 && fn != 0) { fn >>= 1; sn >>= 1; }
            }
            else
            {
                r.CopyTo(node[1..]);
                p.CopyTo(node[33..]);
                r = SHA256.HashData(node);
            }
            fn >>= 1;
            sn >>= 1;
        }
        return sn == 0 && CryptographicOperations.FixedTimeEquals(r, rootHash);
    }
}
