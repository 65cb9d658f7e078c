using System.Security.Cryptography;
using CsCheck;
using Tabula.WireGuard.Keys;
using Tabula.WireGuard.Tests.Support;

namespace Tabula.WireGuard.Tests;

public sealed class KeyTests
{
    [Fact]
    public void Vector_file_is_the_shared_copy_byte_for_byte() =>
        Assert.Equal(Vectors.JsonSha256, Convert.ToHexStringLower(SHA256.HashData(Vectors.ReadJsonBytes())));

    [Theory]
    [InlineData("psk_zero", "initiator")]
    [InlineData("psk_zero", "responder")]
    [InlineData("psk_set", "initiator")]
    [InlineData("psk_set", "responder")]
    public void Public_key_derived_from_vector_static_private_key_matches_vector(string section, string role)
    {
        using var privateKey = new WireGuardKey(Vectors.Hex(section, $"{role}_static_private"));
        using var publicKey = privateKey.DerivePublicKey();
        Assert.Equal(Vectors.Hex(section, $"{role}_static_public"), publicKey.Bytes.ToArray());
    }

    [Fact]
    public void Ephemeral_public_keys_derived_from_vector_private_keys_appear_in_the_handshake_messages()
    {
        byte[] initiation = Vectors.Hex("psk_zero", "initiation");
        byte[] response = Vectors.Hex("psk_zero", "response");
        using var initiatorEphemeral = new WireGuardKey(Vectors.Hex("psk_zero", "initiator_ephemeral_private"));
        using var responderEphemeral = new WireGuardKey(Vectors.Hex("psk_zero", "responder_ephemeral_private"));
        using var initiatorPublic = initiatorEphemeral.DerivePublicKey();
        using var responderPublic = responderEphemeral.DerivePublicKey();
        Assert.Equal(initiation[8..40], initiatorPublic.Bytes.ToArray());   // unencrypted_ephemeral
        Assert.Equal(response[12..44], responderPublic.Bytes.ToArray());
    }

    [Fact]
    public void Vector_private_keys_are_not_pre_clamped_and_derivation_clamps_them()
    {
        byte[] raw = Vectors.Hex("psk_zero", "initiator_static_private");
        byte[] clamped = (byte[])raw.Clone();
        X25519Keys.Clamp(clamped);
        using var a = new WireGuardKey(raw);
        using var b = new WireGuardKey(clamped);
        using var publicA = a.DerivePublicKey();
        using var publicB = b.DerivePublicKey();
        Assert.Equal(publicA, publicB);
    }

    // RFC 7748 section 6.1.
    [Fact]
    public void X25519_matches_rfc7748_section_6_1()
    {
        using var alice = WireGuardKey.ParseHex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
        using var bob = WireGuardKey.ParseHex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
        using var alicePublic = alice.DerivePublicKey();
        using var bobPublic = bob.DerivePublicKey();
        Assert.Equal("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a", alicePublic.ToHex());
        Assert.Equal("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f", bobPublic.ToHex());
        Span<byte> shared1 = stackalloc byte[32], shared2 = stackalloc byte[32];
        Assert.True(X25519Keys.SharedSecret(alice.Bytes, bobPublic.Bytes, shared1));
        Assert.True(X25519Keys.SharedSecret(bob.Bytes, alicePublic.Bytes, shared2));
        Assert.Equal("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742", Convert.ToHexStringLower(shared1));
        Assert.True(shared1.SequenceEqual(shared2));
    }

    [Fact]
    public void Shared_secret_with_a_low_order_point_is_refused()
    {
        using var key = WireGuardKey.GeneratePrivateKey();
        Span<byte> shared = stackalloc byte[32];
        Assert.False(X25519Keys.SharedSecret(key.Bytes, new byte[32], shared));
    }

    [Fact]
    public void Generated_private_keys_are_clamped_and_distinct()
    {
        using var a = WireGuardKey.GeneratePrivateKey();
        using var b = WireGuardKey.GeneratePrivateKey();
        Assert.NotEqual(a, b);
        foreach (var key in new[] { a, b })
        {
            Assert.Equal(0, key.Bytes[0] & 7);
            Assert.Equal(64, key.Bytes[31] & 0xc0);
        }
    }

    [ToolsFact("wg")]
    public void Public_keys_match_wg_pubkey_for_generated_and_vector_keys()
    {
        var keys = new List<WireGuardKey> { new(Vectors.Hex("psk_zero", "initiator_static_private")) };
        for (int i = 0; i < 8; i++)
            keys.Add(WireGuardKey.GeneratePrivateKey());
        foreach (var key in keys)
        {
            string wg = Prerequisites.Run("wg", ["pubkey"], key.ToBase64() + "\n").Trim();
            using var derived = key.DerivePublicKey();
            Assert.Equal(wg, derived.ToBase64());
            key.Dispose();
        }
    }

    [ToolsFact("wg")]
    public void Keys_from_wg_genkey_parse_and_derive_the_public_key_wg_prints()
    {
        string privateText = Prerequisites.Run("wg", "genkey").Trim();
        string publicText = Prerequisites.Run("wg", ["pubkey"], privateText + "\n").Trim();
        using var key = WireGuardKey.ParseBase64(privateText);
        using var derived = key.DerivePublicKey();
        Assert.Equal(publicText, derived.ToBase64());
        Assert.Equal(privateText, key.ToBase64());
    }

    [Fact]
    public void Base64_and_hex_round_trip_for_random_keys() =>
        Gen.Byte.Array[32].Sample(bytes =>
        {
            using var key = new WireGuardKey(bytes);
            using var fromBase64 = WireGuardKey.ParseBase64(key.ToBase64());
            using var fromHex = WireGuardKey.ParseHex(key.ToHex());
            using var fromUpperHex = WireGuardKey.ParseHex(key.ToHex().ToUpperInvariant());
            Assert.Equal(Convert.ToBase64String(bytes), key.ToBase64());
            Assert.Equal(Convert.ToHexStringLower(bytes), key.ToHex());
            Assert.True(fromBase64.Bytes.SequenceEqual(bytes) && fromHex.Bytes.SequenceEqual(bytes) && fromUpperHex.Bytes.SequenceEqual(bytes));
        });

    [Fact]
    public void Constant_time_base64_decoder_agrees_with_the_bcl_on_near_base64_text() =>
        Gen.OneOf("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_=@ \u00e9\u0141".ToCharArray())
            .Array[43].Select(c => new string(c) + "=")
            .Sample(text =>
            {
                bool bcl = TryBclBase64(text, out byte[] expected);
                Assert.Equal(bcl, WireGuardKey.TryParseBase64(text, out var key));
                if (bcl)
                    Assert.Equal(expected[..32], key!.Bytes.ToArray());
                key?.Dispose();
            }, iter: 20000);

    [Fact]
    public void Constant_time_hex_decoder_agrees_with_the_bcl_on_near_hex_text() =>
        Gen.OneOf("0123456789abcdefABCDEFgG/:@`\u0130 ".ToCharArray()).Array[64].Select(c => new string(c))
            .Sample(text =>
            {
                bool bcl = text.All(Uri.IsHexDigit);
                Assert.Equal(bcl, WireGuardKey.TryParseHex(text, out var key));
                if (bcl)
                    Assert.Equal(Convert.FromHexString(text), key!.Bytes.ToArray());
                key?.Dispose();
            });

    static bool TryBclBase64(string text, out byte[] bytes)
    {
        bytes = new byte[33];
        if (!Convert.TryFromBase64String(text, bytes, out int written) || written != 32)
            return false;
        // wg accepts only the canonical encoding: the unused low bits of the 43rd character are zero.
        return Convert.ToBase64String(bytes, 0, 32) == text;
    }

    [Theory]
    [InlineData("", KeyFormatError.Base64Length)]
    [InlineData("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", KeyFormatError.Base64Length)]         // 43, no '='
    [InlineData("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", KeyFormatError.Base64Length)]        // 44, no '='
    [InlineData("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==", KeyFormatError.Base64Invalid)]       // 31 bytes
    [InlineData("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB=", KeyFormatError.Base64Invalid)]       // non-canonical
    [InlineData("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA-A=", KeyFormatError.Base64Invalid)]       // url alphabet
    [InlineData("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\u00c1A=", KeyFormatError.Base64Invalid)] // non-ASCII
    public void Bad_base64_is_refused_with_a_reason(string text, KeyFormatError reason)
    {
        var e = Assert.Throws<WireGuardKeyFormatException>(() => WireGuardKey.ParseBase64(text));
        Assert.Equal(reason, e.Reason);
        Assert.DoesNotContain(text.Length > 8 ? text[..8] : "\u0000", e.Message);
    }

    [Theory]
    [InlineData("00", KeyFormatError.HexLength, false)]
    [InlineData("0g", KeyFormatError.HexInvalid, true)]
    [InlineData(" 0", KeyFormatError.HexInvalid, true)]
    [InlineData("\u01300", KeyFormatError.HexInvalid, true)]     // 'İ' & 0xff would alias a digit
    [InlineData("\u01000", KeyFormatError.HexInvalid, true)]     // 0x100 & 0xff == 0
    public void Bad_hex_is_refused_with_a_reason(string suffix, KeyFormatError reason, bool padTo64)
    {
        string text = padTo64 ? new string('0', 64 - suffix.Length) + suffix : suffix;
        Assert.Equal(reason, Assert.Throws<WireGuardKeyFormatException>(() => WireGuardKey.ParseHex(text)).Reason);
    }

    [Fact]
    public void Dispose_zeroes_the_key_bytes_and_later_use_throws()
    {
        var key = WireGuardKey.GeneratePrivateKey();
        // Peek at the pinned array through the span taken before disposal: it must read zero afterwards.
        unsafe
        {
            fixed (byte* pointer = key.Bytes)
            {
                key.Dispose();
                Assert.True(new ReadOnlySpan<byte>(pointer, 32).IndexOfAnyExcept((byte)0) < 0);
            }
        }
        Assert.Throws<ObjectDisposedException>(() => key.ToBase64());
        key.Dispose(); // idempotent
    }

    [Fact]
    public void ToString_never_shows_key_material()
    {
        using var key = WireGuardKey.GeneratePrivateKey();
        Assert.Equal("WireGuardKey", key.ToString());
        Assert.DoesNotContain(key.ToBase64()[..10], $"{key}");
    }

    [Fact]
    public void Equality_compares_all_32_bytes()
    {
        byte[] bytes = RandomNumberGenerator.GetBytes(32);
        using var a = new WireGuardKey(bytes);
        bytes[31] ^= 1;
        using var b = new WireGuardKey(bytes);
        using var c = a.Clone();
        Assert.NotEqual(a, b);
        Assert.Equal(a, c);
        Assert.Equal(a.GetHashCode(), c.GetHashCode());
    }

    [Fact]
    public void Zero_key_is_zero_and_a_random_one_is_not()
    {
        using var zero = WireGuardKey.Zero();
        using var psk = WireGuardKey.GeneratePresharedKey();
        Assert.True(zero.IsZero);
        Assert.False(psk.IsZero);
    }

    [Fact]
    public void Wrong_length_raw_key_is_a_programming_error() =>
        Assert.Throws<ArgumentException>(() => new WireGuardKey(new byte[31]));
}
