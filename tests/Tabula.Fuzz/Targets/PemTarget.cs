using System.Security.Cryptography;
using System.Text;
using Tabula.Packaging;
using Tabula.Packaging.Crypto;

namespace Tabula.Fuzz.Targets;

/// <summary>
/// PEM text as the three readers take it: all blocks, a certificate bundle, a PKCS#8 Ed25519 key. Blocks that were
/// read, written again with the BCL's PEM writer and re-read, are the same blocks. Accepted when any reader accepts.
/// </summary>
public static class PemTarget
{
    public static bool Fuzz(ReadOnlySpan<byte> input)
    {
        bool accepted = false;
        try
        {
            var blocks = Pem.ReadAll(input);
            var text = new StringBuilder();
            foreach (var block in blocks)
                text.Append(PemEncoding.Write(block.Label, block.Der)).Append('\n');
            var again = Pem.ReadAll(Encoding.ASCII.GetBytes(text.ToString()));
            FuzzFinding.Check(again.Count == blocks.Count
                && again.Zip(blocks).All(p => p.First.Label == p.Second.Label && p.First.Der.AsSpan().SequenceEqual(p.Second.Der)),
                "PEM: read, write, read changed the blocks", input);
            accepted = blocks.Count > 0;
        }
        catch (PackageFormatException) { }

        try
        {
            Certificate.ParsePemBundle(input);
            accepted = true;
        }
        catch (PackageFormatException) { }

        try
        {
            byte[] seed = Ed25519Keys.FromPkcs8Pem(input);
            FuzzFinding.Check(seed.Length == Ed25519.PrivateKeySize, "PEM: a PKCS#8 key of the wrong size accepted", input);
            FuzzFinding.Check(Ed25519Keys.FromPkcs8Pem(Encoding.ASCII.GetBytes(Ed25519Keys.ToPkcs8Pem(seed))).AsSpan().SequenceEqual(seed),
                "PEM: PKCS#8 key read, write, read changed it", input);
            accepted = true;
        }
        catch (PackageFormatException) { }
        return accepted;
    }
}
