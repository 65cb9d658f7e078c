using CsCheck;

namespace Tabula.Fuzz.Tests;

/// <summary>
/// CsCheck generators for fuzz inputs: random bytes, and corpus seeds mutated the ways afl's havoc stage does
/// (overwrite, insert, delete, duplicate a slice, splice in another seed, cut short, set interesting values).
/// </summary>
internal static class Inputs
{
    static readonly byte[] Interesting = [0x00, 0x01, 0x7f, 0x80, 0xff, (byte)'"', (byte)'\\', (byte)'\n', (byte)'=', (byte)'-', (byte)'{', (byte)'}'];

    public static Gen<byte[]> RandomBytes { get; } = Gen.Byte.Array[0, 700];

    /// <summary>One seed with one to eight mutations.</summary>
    public static Gen<byte[]> Mutations(IReadOnlyList<byte[]> seeds) =>
        Gen.Select(Gen.Int[0, seeds.Count - 1], Gen.Int[0, seeds.Count - 1], Gen.UInt.Array[1, 8], Gen.Byte.Array[1, 16],
            (seed, other, steps, bytes) => Mutate(seeds[seed], seeds[other], steps, bytes));

    static byte[] Mutate(byte[] seed, byte[] other, uint[] steps, byte[] bytes)
    {
        var data = new List<byte>(seed);
        foreach (uint step in steps)
        {
            int at = data.Count == 0 ? 0 : (int)((step >> 4) % (uint)data.Count);
            int length = 1 + (int)((step >> 24) % 32);
            switch (step % 8)
            {
                case 0:
                    for (int i = 0; i < bytes.Length && at + i < data.Count; i++) data[at + i] = bytes[i];
                    break;
                case 1:
                    data.InsertRange(at, bytes);
                    break;
                case 2:
                    data.RemoveRange(at, Math.Min(length, data.Count - at));
                    break;
                case 3:
                    data.InsertRange(at, data.Skip(at).Take(length).ToArray());
                    break;
                case 4:
                    int from = other.Length == 0 ? 0 : (int)((step >> 12) % (uint)other.Length);
                    data.InsertRange(at, other.Skip(from).Take(length * 4));
                    break;
                case 5:
                    data.RemoveRange(at, data.Count - at);
                    break;
                case 6:
                    if (at < data.Count) data[at] = Interesting[(step >> 20) % (uint)Interesting.Length];
                    break;
                default:
                    if (at < data.Count) data[at] ^= (byte)(1 << (int)((step >> 20) % 8));
                    break;
            }
        }
        return [.. data];
    }
}
