using System.Security.Cryptography;
using System.Text;
using Tabula.Fleet.Core;
using Tabula.Fleet.Protocol;
using Tabula.Fleet.Security;

namespace Tabula.Fleet.Tests;

public sealed class TotpTests
{
    // RFC 6238 appendix B: the seeds are ASCII "1234567890" repeated to the hash's block of key bytes.
    [Theory]
    [InlineData(59L, "94287082", "46119246", "90693936")]
    [InlineData(1111111109L, "07081804", "68084774", "25091201")]
    [InlineData(1111111111L, "14050471", "67062674", "99943326")]
    [InlineData(1234567890L, "89005924", "91819424", "93441116")]
    [InlineData(2000000000L, "69279037", "90698825", "38618901")]
    [InlineData(20000000000L, "65353130", "77737706", "47863826")]
    public void Codes_match_the_rfc6238_test_vectors(long unixTime, string sha1, string sha256, string sha512)
    {
        long step = Totp.StepAt(DateTimeOffset.FromUnixTimeSeconds(unixTime));
        Assert.Equal(sha1, Totp.Code(Seed(20), step, 8, HashAlgorithmName.SHA1));
        Assert.Equal(sha256, Totp.Code(Seed(32), step, 8, HashAlgorithmName.SHA256));
        Assert.Equal(sha512, Totp.Code(Seed(64), step, 8, HashAlgorithmName.SHA512));
    }

    private static byte[] Seed(int length) => Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat("1234567890", 7))[..length]);

    [Fact]
    public void Hotp_codes_match_the_rfc4226_test_vectors()
    {
        string[] expected = ["755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"];
        for (int counter = 0; counter < expected.Length; counter++)
            Assert.Equal(expected[counter], Totp.Code(Seed(20), counter));
    }

    [Fact]
    public void Match_accepts_one_step_of_skew_and_nothing_further()
    {
        byte[] secret = Seed(20);
        var now = DateTimeOffset.FromUnixTimeSeconds(1_700_000_000);
        long step = Totp.StepAt(now);
        Assert.Equal(step - 1, Totp.Match(secret, Totp.Code(secret, step - 1), now));
        Assert.Equal(step + 1, Totp.Match(secret, Totp.Code(secret, step + 1), now));
        Assert.Null(Totp.Match(secret, Totp.Code(secret, step + 2), now));
        Assert.Null(Totp.Match(secret, "12345", now));
    }

    [Theory]
    [InlineData("", "")]
    [InlineData("f", "MY")]
    [InlineData("fo", "MZXQ")]
    [InlineData("foo", "MZXW6")]
    [InlineData("foob", "MZXW6YQ")]
    [InlineData("fooba", "MZXW6YTB")]
    [InlineData("foobar", "MZXW6YTBOI")]
    public void Base32_matches_rfc4648_without_padding(string text, string encoded)
    {
        Assert.Equal(encoded, Base32.Encode(Encoding.ASCII.GetBytes(text)));
        Assert.Equal(text, Encoding.ASCII.GetString(Base32.Decode(encoded)));
    }
}

public sealed class PasswordHasherTests
{
    [Fact]
    public void Hash_uses_at_least_600k_pbkdf2_sha256_iterations_and_verifies_only_the_right_password()
    {
        string stored = PasswordHasher.Hash("correct horse battery staple");
        Assert.StartsWith("pbkdf2-sha256$600000$", stored);
        Assert.True(PasswordHasher.Verify("correct horse battery staple", stored));
        Assert.False(PasswordHasher.Verify("correct horse battery stapler", stored));
        Assert.NotEqual(stored, PasswordHasher.Hash("correct horse battery staple"));   // salted
        Assert.False(PasswordHasher.Verify("x", "md5$1$abc"));
    }
}

public sealed class MachineLifecycleTests
{
    private static Machine In(MachineState state, bool placed = false, MachineState? previous = null) =>
        new("m", state, previous, new byte[32], new byte[32], new string('0', 64),
            placed ? new RelayPlacement("h", "se", "Sweden", "got", "Gothenburg", "p", true, "192.0.2.1", null, 51820, 100, true) : null, 0, 0, 0);

    [Theory]
    [InlineData(MachineState.Awaiting, MachineLifecycle.Action.Provision, MachineState.Provisioned)]
    [InlineData(MachineState.Provisioned, MachineLifecycle.Action.Provision, MachineState.Provisioned)]
    [InlineData(MachineState.Provisioned, MachineLifecycle.Action.Deploy, MachineState.Deployed)]
    [InlineData(MachineState.Deployed, MachineLifecycle.Action.Drain, MachineState.Draining)]
    [InlineData(MachineState.Draining, MachineLifecycle.Action.Deploy, MachineState.Deployed)]
    [InlineData(MachineState.Awaiting, MachineLifecycle.Action.Retire, MachineState.Retired)]
    [InlineData(MachineState.Deployed, MachineLifecycle.Action.Retire, MachineState.Retired)]
    [InlineData(MachineState.Draining, MachineLifecycle.Action.Retire, MachineState.Retired)]
    public void Legal_transitions_lead_to_the_expected_state(MachineState from, MachineLifecycle.Action action, MachineState to) =>
        Assert.Equal(to, MachineLifecycle.Apply(In(from, placed: from != MachineState.Awaiting), action));

    [Theory]
    [InlineData(MachineState.Awaiting, MachineLifecycle.Action.Deploy)]
    [InlineData(MachineState.Awaiting, MachineLifecycle.Action.Drain)]
    [InlineData(MachineState.Provisioned, MachineLifecycle.Action.Drain)]
    [InlineData(MachineState.Deployed, MachineLifecycle.Action.Provision)]
    [InlineData(MachineState.Deployed, MachineLifecycle.Action.Deploy)]
    [InlineData(MachineState.Draining, MachineLifecycle.Action.Drain)]
    [InlineData(MachineState.Retired, MachineLifecycle.Action.Deploy)]
    [InlineData(MachineState.Retired, MachineLifecycle.Action.Retire)]
    [InlineData(MachineState.Retired, MachineLifecycle.Action.Provision)]
    public void Illegal_transitions_are_refused(MachineState from, MachineLifecycle.Action action)
    {
        var e = Assert.Throws<FleetException>(() => MachineLifecycle.Apply(In(from, placed: from != MachineState.Awaiting), action));
        Assert.Equal(FleetError.IllegalTransition, e.Error);
    }

    [Fact]
    public void Awaiting_machine_that_was_provisioned_before_may_be_deployed_by_staff() =>
        Assert.Equal(MachineState.Deployed, MachineLifecycle.Apply(In(MachineState.Awaiting, placed: true, previous: MachineState.Deployed), MachineLifecycle.Action.Deploy));

    [Theory]
    [InlineData(MachineState.Deployed, true, MachineState.Deployed, null)]
    [InlineData(MachineState.Deployed, false, MachineState.Awaiting, MachineState.Deployed)]
    [InlineData(MachineState.Draining, true, MachineState.Draining, null)]
    [InlineData(MachineState.Provisioned, false, MachineState.Awaiting, MachineState.Provisioned)]
    [InlineData(MachineState.Awaiting, true, MachineState.Awaiting, null)]
    public void Reenrollment_keeps_the_state_only_for_allowed_packages(MachineState from, bool allowed, MachineState to, MachineState? remembered)
    {
        var (state, previous) = MachineLifecycle.OnEnrollment(In(from, placed: true), allowed);
        Assert.Equal(to, state);
        Assert.Equal(remembered, previous);
    }

    [Fact]
    public void Waiting_machine_rebooted_into_an_allowed_package_returns_to_the_remembered_state() =>
        Assert.Equal((MachineState.Deployed, (MachineState?)null),
            MachineLifecycle.OnEnrollment(In(MachineState.Awaiting, placed: true, previous: MachineState.Deployed), digestAllowed: true));
}

public sealed class PeerSetHashTests
{
    [Fact]
    public void Incremental_hash_is_independent_of_order_and_removal_undoes_addition()
    {
        var peers = Enumerable.Range(0, 50).Select(i => (Key: RandomNumberGenerator.GetBytes(32), V4: $"10.64.0.{i + 2}", V6: $"fc00::{i + 2:x}")).ToList();
        byte[] forward = PeerSetHash.Empty, backward = PeerSetHash.Empty;
        foreach (var p in peers) PeerSetHash.Toggle(forward, p.Key, p.V4, p.V6);
        foreach (var p in Enumerable.Reverse(peers)) PeerSetHash.Toggle(backward, p.Key, p.V4, p.V6);
        Assert.Equal(forward, backward);
        byte[] without = (byte[])forward.Clone();
        PeerSetHash.Toggle(without, peers[7].Key, peers[7].V4, peers[7].V6);
        Assert.NotEqual(forward, without);
        PeerSetHash.Toggle(without, peers[7].Key, peers[7].V4, peers[7].V6);
        Assert.Equal(forward, without);
        // The same key with another address is another peer.
        byte[] moved = (byte[])forward.Clone();
        PeerSetHash.Toggle(moved, peers[0].Key, peers[0].V4, peers[0].V6);
        PeerSetHash.Toggle(moved, peers[0].Key, "10.64.9.9", peers[0].V6);
        Assert.NotEqual(forward, moved);
    }
}

public sealed class AddressPoolTests
{
    [Fact]
    public void Devices_get_consecutive_addresses_after_the_gateway_until_the_pool_is_exhausted()
    {
        var pool = AddressPool.Default;
        Assert.Equal(("10.64.0.2", "fc00:bbbb:bbbb:bb01::2"), pool.Allocate(0));
        Assert.Equal(("10.64.1.3", "fc00:bbbb:bbbb:bb01::103"), pool.Allocate(257));
        Assert.Equal("10.64.0.1", pool.Ipv4Gateway);
        var small = new AddressPool("192.168.0.0/30", "fd00::/120");
        Assert.Equal("192.168.0.2", small.Allocate(0).Ipv4);
        Assert.Equal(FleetError.PoolExhausted, Assert.Throws<FleetException>(() => small.Allocate(1)).Error);
    }
}
