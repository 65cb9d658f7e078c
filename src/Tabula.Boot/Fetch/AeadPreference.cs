using System.Diagnostics;
using System.Net.Security;
using System.Runtime.Versioning;
using System.Security.Cryptography;

namespace Tabula.Boot.Fetch;

/// <summary>
/// Which TLS cipher (AEAD) stboot asks for first, decided by measuring both on this CPU once. Under software CPU
/// emulation (QEMU TCG, where the benchmark and the end-to-end tests run) AES-NI and carry-less multiplication are
/// emulated instruction by instruction, and ChaCha20-Poly1305 is the faster one (measured in the guest: 16 MiB in
/// 16 KiB records, 0.54 s against 0.97 s for AES-256-GCM and 0.83 s for AES-128-GCM); on hardware with AES
/// instructions AES-GCM is faster and the runtime's default offer (AES-256-GCM first) is kept. The measurement takes a
/// few milliseconds under emulation and microseconds on hardware; which cipher is used changes nothing about trust
/// (certificate pinning and the package signatures are the same either way).
/// </summary>
internal sealed record AeadPreference(bool ChaChaFirst, TimeSpan AesGcmTime, TimeSpan ChaChaTime)
{
    const int Record = 16 * 1024, Records = 4, Trials = 3;

    /// <summary>ChaCha20-Poly1305 must beat AES-256-GCM by this factor to be asked for first.</summary>
    const double Margin = 1.25;

    public static AeadPreference Measure()
    {
        if (!ChaCha20Poly1305.IsSupported || !AesGcm.IsSupported)
            return new(false, TimeSpan.Zero, TimeSpan.Zero);
        byte[] plain = new byte[Record], cipher = new byte[Record], tag = new byte[16], nonce = new byte[12], key = new byte[32];
        using var aes = new AesGcm(key, tag.Length);
        using var chacha = new ChaCha20Poly1305(key);
        TimeSpan aesTime = Fastest(() => aes.Encrypt(nonce, plain, cipher, tag));
        TimeSpan chachaTime = Fastest(() => chacha.Encrypt(nonce, plain, cipher, tag));
        return new(chachaTime * Margin < aesTime, aesTime, chachaTime);
    }

    static TimeSpan Fastest(Action encryptOneRecord)
    {
        encryptOneRecord(); // first use initialises the cipher context: not part of the throughput
        TimeSpan best = TimeSpan.MaxValue;
        for (int trial = 0; trial < Trials; trial++)
        {
            long start = Stopwatch.GetTimestamp();
            for (int i = 0; i < Records; i++)
                encryptOneRecord();
            TimeSpan took = Stopwatch.GetElapsedTime(start);
            if (took < best)
                best = took;
        }
        return best;
    }

    /// <summary>For the config stage's line: <c>tls_aead=chacha20-first(aes-gcm=3.9ms,chacha20=2.1ms)</c>.</summary>
    public string Describe() =>
        $"{(ChaChaFirst ? "chacha20-first" : "default")}(aes-gcm={AesGcmTime.TotalMilliseconds:0.0}ms,chacha20={ChaChaTime.TotalMilliseconds:0.0}ms)";

    /// <summary>
    /// The client's offer when ChaCha20-Poly1305 is faster: TLS 1.3 ChaCha20-Poly1305 then AES-128-GCM, the cipher
    /// every TLS 1.3 server must implement (RFC 8446 §9.1), so every conforming server still connects. AES-256-GCM is
    /// left out of the TLS 1.3 offer because servers that apply their own order (OpenSSL with server preference, as
    /// the .NET provisioning server does: AES-256-GCM, ChaCha20, AES-128-GCM) would otherwise pick it over ChaCha20.
    /// TLS 1.2 servers get the ECDHE AEAD suites in the same spirit, AES-256-GCM last. Null (runtime default) otherwise.
    /// </summary>
    [UnsupportedOSPlatform("windows")]
    public CipherSuitesPolicy? Policy() => ChaChaFirst
        ? new CipherSuitesPolicy(
        [
            TlsCipherSuite.TLS_CHACHA20_POLY1305_SHA256,
            TlsCipherSuite.TLS_AES_128_GCM_SHA256,
            TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
            TlsCipherSuite.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
            TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
            TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        ])
        : null;
}
