namespace Tabula.WireGuard.Keys;

/// <summary>
/// Constant-time base64 and hex codecs for 32-byte keys, ported from wireguard-tools <c>src/encoding.c</c>
/// (<c>key_from_base64</c>, <c>key_from_hex</c>): no branch and no table lookup depends on the key's characters,
/// only on the length. Errors are folded into one accumulator and checked at the end.
/// </summary>
internal static class KeyEncoding
{
    /// <summary>Decodes 44 base64 characters (last '=') into 32 bytes; null on success.</summary>
    public static KeyFormatError? TryDecodeBase64(ReadOnlySpan<char> text, Span<byte> key)
    {
        if (text.Length != WireGuardKey.Base64Length || text[^1] != '=')
            return KeyFormatError.Base64Length;
        uint bad = 0;
        int i;
        for (i = 0; i < WireGuardKey.Length / 3; i++)
        {
            int value = DecodeQuad(text.Slice(i * 4, 4), ref bad);
            bad |= (uint)value >> 31;
            key[i * 3 + 0] = (byte)(value >> 16);
            key[i * 3 + 1] = (byte)(value >> 8);
            key[i * 3 + 2] = (byte)value;
        }
        // The last group holds two bytes: three characters plus the '=' (decoded as 'A', i.e. zero bits).
        Span<char> lastQuad = [text[i * 4], text[i * 4 + 1], text[i * 4 + 2], 'A'];
        int last = DecodeQuad(lastQuad, ref bad);
        bad |= ((uint)last >> 31) | (uint)(last & 0xff); // the low 8 bits must be zero: canonical encoding only
        key[i * 3 + 0] = (byte)(last >> 16);
        key[i * 3 + 1] = (byte)(last >> 8);
        if (bad != 0)
        {
            key.Clear();
            return KeyFormatError.Base64Invalid;
        }
        return null;
    }

    // encoding.c decode_base64: each character contributes its 6 bits, or -1 (making the result negative) when it
    // is outside [A-Za-z0-9+/]. Characters above 0x7f are refused through `bad`.
    static int DecodeQuad(ReadOnlySpan<char> src, ref uint bad)
    {
        int value = 0;
        for (int i = 0; i < 4; i++)
        {
            int c = src[i];
            bad |= (uint)c >> 7;
            value |= (-1
                + (((('A' - 1 - c) & (c - ('Z' + 1))) >> 8) & (c - 64))
                + (((('a' - 1 - c) & (c - ('z' + 1))) >> 8) & (c - 70))
                + (((('0' - 1 - c) & (c - ('9' + 1))) >> 8) & (c + 5))
                + (((('+' - 1 - c) & (c - ('+' + 1))) >> 8) & 63)
                + (((('/' - 1 - c) & (c - ('/' + 1))) >> 8) & 64)) << (18 - 6 * i);
        }
        return value;
    }

    /// <summary>Decodes 64 hex characters (either case) into 32 bytes; null on success.</summary>
    public static KeyFormatError? TryDecodeHex(ReadOnlySpan<char> text, Span<byte> key)
    {
        if (text.Length != WireGuardKey.HexLength)
            return KeyFormatError.HexLength;
        uint bad = 0;
        for (int i = 0; i < WireGuardKey.HexLength; i += 2)
        {
            uint high = DecodeNibble(text[i], ref bad);
            uint low = DecodeNibble(text[i + 1], ref bad);
            key[i / 2] = (byte)((high << 4) | low);
        }
        if (bad != 0)
        {
            key.Clear();
            return KeyFormatError.HexInvalid;
        }
        return null;
    }

    // encoding.c key_from_hex, one character: c_num0/c_alpha0 are 0xff masks when c is a digit / a letter a-f.
    static uint DecodeNibble(char ch, ref uint bad)
    {
        uint c = ch;
        bad |= c >> 8;                                  // not a byte at all
        c &= 0xff;
        uint num = c ^ 48u;
        uint num0 = ((num - 10u) >> 8) & 0xff;
        uint alpha = ((c & ~32u) - 55u) & 0xff;
        uint alpha0 = (((alpha - 10u) ^ (alpha - 16u)) >> 8) & 0xff;
        bad |= ((num0 | alpha0) - 1u) >> 8 & 1;
        return ((num0 & num) | (alpha0 & alpha)) & 0xf;
    }

    /// <summary>Lower-case hex of <paramref name="key"/> as ASCII bytes, without a lookup table.</summary>
    public static void EncodeHex(ReadOnlySpan<byte> key, Span<byte> destination)
    {
        if (destination.Length < key.Length * 2)
            throw new ArgumentException("destination too small", nameof(destination));
        for (int i = 0; i < key.Length; i++)
        {
            destination[i * 2] = Nibble(key[i] >> 4);
            destination[i * 2 + 1] = Nibble(key[i] & 0xf);
        }
    }

    // encoding.c key_to_hex: 87 + n for letters, minus 39 when n < 10, selected arithmetically.
    static byte Nibble(int n) => (byte)(87 + n + (((n - 10) >> 8) & ~38));
}
