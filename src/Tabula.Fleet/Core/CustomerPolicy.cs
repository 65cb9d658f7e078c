using System.Security.Cryptography;

namespace Tabula.Fleet.Core;

/// <summary>The operator's availability settings for customers (from <see cref="FleetOptions"/>).</summary>
public sealed record CustomerPolicy(AccountCreation Creation, int ProofOfWorkBits, TimeSpan AddressQuarantine, int DeviceAddsPerWindow,
    TimeSpan DeviceChurnWindow, int FleetCapacity = Protocol.PeerCapacity.DefaultFleetCapacity)
{
    public static CustomerPolicy From(FleetOptions o)
    {
        if (o.ProofOfWorkBits is < 1 or > FleetLimits.MaxProofOfWorkBits)
            throw new ArgumentException($"the proof-of-work difficulty is 1-{FleetLimits.MaxProofOfWorkBits} bits");
        if (o.AddressQuarantine < TimeSpan.Zero) throw new ArgumentException("the address quarantine must not be negative");
        if (o.DeviceAddsPerWindow < 1 || o.DeviceChurnWindow <= TimeSpan.Zero)
            throw new ArgumentException("device churn: at least 1 addition per window, and a positive window");
        if (o.FleetCapacity is < 1 or > Protocol.PeerCapacity.KernelMaxPeers)
            throw new ArgumentException($"the fleet capacity (--fleet-capacity) is 1-{Protocol.PeerCapacity.KernelMaxPeers} devices: every relay holds every " +
                $"device, and kernel WireGuard holds at most {Protocol.PeerCapacity.KernelMaxPeers} peers (2^20) per device; {o.FleetCapacity} would " +
                "make every relay's peer set fail past that");
        return new CustomerPolicy(o.AccountCreation, o.ProofOfWorkBits, o.AddressQuarantine, o.DeviceAddsPerWindow, o.DeviceChurnWindow, o.FleetCapacity);
    }
}

/// <summary>
/// Hashcash-style proof of work for account creation: SHA-256(challenge ‖ nonce) must start with <c>bits</c> zero bits.
/// The challenge is 32 random bytes the controller issued and stored; the nonce is the client's, at most 64 bytes.
/// </summary>
public static class ProofOfWork
{
    public const int ChallengeBytes = 32;
    public const int MaxNonceBytes = 64;

    public static bool Verify(ReadOnlySpan<byte> challenge, ReadOnlySpan<byte> nonce, int bits)
    {
        if (challenge.Length != ChallengeBytes || nonce.Length is 0 or > MaxNonceBytes) return false;
        Span<byte> input = stackalloc byte[ChallengeBytes + MaxNonceBytes];
        challenge.CopyTo(input);
        nonce.CopyTo(input[ChallengeBytes..]);
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(input[..(ChallengeBytes + nonce.Length)], hash);
        return LeadingZeroBits(hash) >= bits;
    }

    public static int LeadingZeroBits(ReadOnlySpan<byte> hash)
    {
        int bits = 0;
        foreach (byte b in hash)
        {
            if (b == 0) { bits += 8; continue; }
            return bits + System.Numerics.BitOperations.LeadingZeroCount((uint)b) - 24;
        }
        return bits;
    }

    /// <summary>What a client does: try nonces (8-byte counters) until one verifies.</summary>
    public static byte[] Solve(ReadOnlySpan<byte> challenge, int bits)
    {
        byte[] nonce = new byte[8];
        for (ulong n = 0; ; n++)
        {
            System.Buffers.Binary.BinaryPrimitives.WriteUInt64BigEndian(nonce, n);
            if (Verify(challenge, nonce, bits)) return nonce;
        }
    }
}
