using System.Security.Cryptography;
using System.Text;
using Tabula.Packaging.Crypto;
using Tabula.Testing;

namespace Tabula.Packaging.Tests;

/// <summary>The freshness formats (issue 16, /work/freshness-design.md §1-4): one writer, one reader each.</summary>
public sealed class FreshnessFormatTests : IDisposable
{
    readonly string directory = Directory.CreateTempSubdirectory("tabula-fresh-").FullName;

    public void Dispose() => Directory.Delete(directory, recursive: true);

    static readonly Uri TicketUrl = new("https://10.0.2.2:8443/boot/v1/ticket");

    // ---- manifest -------------------------------------------------------------------------------------------------

    [Fact]
    public void Fresh_manifest_without_release_is_byte_identical_to_stmgrs()
    {
        string json = Encoding.UTF8.GetString(new Manifest("l", "boot/k", "boot/i", "console=ttyS0").ToJson());
        Assert.Equal("{\n  \"version\": 1,\n  \"label\": \"l\",\n  \"kernel\": \"boot/k\",\n  \"initramfs\": \"boot/i\",\n  \"cmdline\": \"console=ttyS0\"\n}", json);
    }

    [Theory, InlineData(1L, "relay"), InlineData(Releases.MaxRelease, null), InlineData(0L, "a-b-9")]
    public void Fresh_manifest_release_and_class_round_trip(long release, string? machineClass)
    {
        var manifest = new Manifest("l", "boot/k", "boot/i", "") { Release = release, MachineClass = machineClass };
        byte[] json = manifest.ToJson();
        Assert.Equal(manifest, Manifest.Parse(json));
        Assert.Contains("\"tabula\": {", Encoding.UTF8.GetString(json));
    }

    [Fact]
    public void Fresh_manifest_written_with_release_is_stmgrs_plus_the_tabula_object()
    {
        string json = Encoding.UTF8.GetString(new Manifest("l", "boot/k", "boot/i", "") { Release = 7, MachineClass = "relay" }.ToJson());
        Assert.EndsWith("\"cmdline\": \"\",\n  \"tabula\": {\n    \"release\": 7,\n    \"machine_class\": \"relay\"\n  }\n}", json);
    }

    [Theory]
    [InlineData("""{"release": 0}""")]
    [InlineData("""{"release": -1}""")]
    [InlineData("""{"release": 9007199254740993}""")]
    [InlineData("""{"release": "1"}""")]
    [InlineData("""{"machine_class": "Relay"}""")]
    [InlineData("""{"machine_class": ""}""")]
    [InlineData("""{"machine_class": "relay/1"}""")]
    [InlineData("[1]")]
    public void Fresh_manifest_with_a_bad_tabula_object_is_refused(string tabula)
    {
        string json = $$"""{"version":1,"kernel":"k","initramfs":"i","tabula":{{tabula}}}""";
        var e = Assert.Throws<PackageFormatException>(() => Manifest.Parse(Encoding.UTF8.GetBytes(json)));
        Assert.Equal(FormatError.InvalidField, e.Error);
    }

    [Fact]
    public void Fresh_manifest_class_of_65_characters_is_refused_and_64_accepted()
    {
        Assert.Equal(new string('a', 64), Manifest.Parse(Encoding.UTF8.GetBytes($$$"""{"version":1,"kernel":"k","initramfs":"i","tabula":{"machine_class":"{{{new string('a', 64)}}}"}}""")).MachineClass);
        Assert.Throws<PackageFormatException>(() => Manifest.Parse(Encoding.UTF8.GetBytes($$$"""{"version":1,"kernel":"k","initramfs":"i","tabula":{"machine_class":"{{{new string('a', 65)}}}"}}""")));
        Assert.Throws<ArgumentException>(() => new Manifest("l", "k", "i", "") { MachineClass = new string('a', 65) }.ToJson());
        Assert.Throws<ArgumentOutOfRangeException>(() => new Manifest("l", "k", "i", "") { Release = -1 }.ToJson());
    }

    // ---- trust policy ---------------------------------------------------------------------------------------------

    [Theory, InlineData(FreshnessMode.Required, 0L, null), InlineData(FreshnessMode.Optional, 12L, "relay")]
    public void Fresh_trust_policy_round_trips(FreshnessMode mode, long floor, string? machineClass)
    {
        var policy = new TrustPolicy(2, FetchMethod.Network) { Freshness = new FreshnessPolicy(mode, floor, machineClass, TicketUrl) };
        Assert.Equal(policy, TrustPolicy.Parse(policy.ToJson()));
    }

    [Fact]
    public void Fresh_trust_policy_json_has_the_documented_shape()
    {
        var policy = new TrustPolicy(1, FetchMethod.Network) { Freshness = new FreshnessPolicy(FreshnessMode.Required, 3, "relay", TicketUrl) };
        Assert.Equal("{\n  \"ospkg_signature_threshold\": 1,\n  \"ospkg_fetch_method\": \"network\",\n  \"tabula_freshness\": {\n" +
            "    \"mode\": \"required\",\n    \"min_release\": 3,\n    \"machine_class\": \"relay\",\n" +
            "    \"ticket_url\": \"https://10.0.2.2:8443/boot/v1/ticket\"\n  }\n}\n", Encoding.UTF8.GetString(policy.ToJson()));
    }

    [Theory]
    [InlineData("""{"mode":"maybe","ticket_url":"https://a/t"}""")]
    [InlineData("""{"ticket_url":"https://a/t"}""")]
    [InlineData("""{"mode":"required"}""")]
    [InlineData("""{"mode":"required","ticket_url":"http://a/t"}""")]
    [InlineData("""{"mode":"required","ticket_url":"https://u:p@a/t"}""")]
    [InlineData("""{"mode":"required","ticket_url":"https://a/t?x=1"}""")]
    [InlineData("""{"mode":"required","ticket_url":"/boot/v1/ticket"}""")]
    [InlineData("""{"mode":"required","ticket_url":"https://a/t","min_release":-1}""")]
    [InlineData("""{"mode":"required","ticket_url":"https://a/t","machine_class":"A"}""")]
    [InlineData("\"required\"")]
    public void Fresh_trust_policy_with_a_bad_freshness_object_is_refused(string freshness)
    {
        string json = $$"""{"ospkg_signature_threshold":1,"ospkg_fetch_method":"network","tabula_freshness":{{freshness}}}""";
        var e = Assert.Throws<PackageFormatException>(() => TrustPolicy.Parse(Encoding.UTF8.GetBytes(json)));
        Assert.Equal(FormatError.InvalidField, e.Error);
    }

    [Fact]
    public void Fresh_folder_with_ticket_root_round_trips()
    {
        byte[] ticketPublic = Ed25519.PublicKeyOf(Ed25519.NewPrivateKey());
        var folder = new TrustPolicyFolder(new TrustPolicy(1, FetchMethod.Network) { Freshness = new FreshnessPolicy(FreshnessMode.Required, 1, "relay", TicketUrl) },
            [TestPki.Root().Certificate], [TestPki.Root().Certificate], null) { TicketRoot = ticketPublic };
        folder.Write(directory + "/t");
        var loaded = TrustPolicyFolder.Load(directory + "/t");
        Assert.Equal(folder.Policy, loaded.Policy);
        Assert.Equal(ticketPublic, loaded.TicketRoot);
        Assert.StartsWith("-----BEGIN PUBLIC KEY-----", File.ReadAllText(Path.Combine(directory, "t", TrustPolicyFolder.TicketRootFile)));
    }

    [Fact]
    public void Fresh_folder_needs_ticket_root_exactly_with_freshness()
    {
        var fresh = new TrustPolicy(1, FetchMethod.Network) { Freshness = new FreshnessPolicy(FreshnessMode.Optional, 0, null, TicketUrl) };
        Assert.Throws<ArgumentException>(() => new TrustPolicyFolder(fresh, [TestPki.Root().Certificate], null, null).Write(directory + "/a"));
        Assert.Throws<ArgumentException>(() => new TrustPolicyFolder(new TrustPolicy(1, FetchMethod.Network), [TestPki.Root().Certificate], null, null)
            { TicketRoot = new byte[32] }.Write(directory + "/b"));

        // Hand-made folders: freshness without the key file, and the key file without freshness.
        new TrustPolicyFolder(new TrustPolicy(1, FetchMethod.Network), [TestPki.Root().Certificate], null, null).Write(directory + "/c");
        File.WriteAllBytes(Path.Combine(directory, "c", TrustPolicyFolder.PolicyFile), fresh.ToJson());
        Assert.Equal(FormatError.MissingEntry, Assert.Throws<PackageFormatException>(() => TrustPolicyFolder.Load(directory + "/c")).Error);
        new TrustPolicyFolder(new TrustPolicy(1, FetchMethod.Network), [TestPki.Root().Certificate], null, null).Write(directory + "/d");
        File.WriteAllText(Path.Combine(directory, "d", TrustPolicyFolder.TicketRootFile), Ed25519Keys.ToPublicKeyPem(new byte[32]));
        Assert.Equal(FormatError.MissingEntry, Assert.Throws<PackageFormatException>(() => TrustPolicyFolder.Load(directory + "/d")).Error);
    }

    [Fact]
    public void Fresh_ticket_root_must_be_an_ed25519_public_key()
    {
        byte[] key = RandomNumberGenerator.GetBytes(32);
        Assert.Equal(key, Ed25519Keys.FromPublicKeyPem(Encoding.ASCII.GetBytes(Ed25519Keys.ToPublicKeyPem(key))));
        using var ec = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        Assert.Equal(FormatError.InvalidKey, Assert.Throws<PackageFormatException>(() => Ed25519Keys.FromPublicKeyPem(Encoding.ASCII.GetBytes(ec.ExportSubjectPublicKeyInfoPem()))).Error);
        Assert.Equal(FormatError.InvalidPem, Assert.Throws<PackageFormatException>(() => Ed25519Keys.FromPublicKeyPem(Encoding.ASCII.GetBytes(Ed25519Keys.ToPkcs8Pem(key)))).Error);
    }

    // ---- machine identity -----------------------------------------------------------------------------------------

    [Fact]
    public void Ticket_machine_id_is_the_first_16_bytes_of_sha256_of_the_public_key()
    {
        byte[] key = RandomNumberGenerator.GetBytes(32);
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(key)[..16]), MachineIdentity.MachineId(key));
        Assert.True(MachineIdentity.IsMachineId(MachineIdentity.MachineId(key)));
    }

    [Fact]
    public void Ticket_identity_key_is_read_from_the_host_configuration()
    {
        byte[] key = Ed25519.NewPrivateKey();
        byte[] host = Encoding.UTF8.GetBytes($$$"""{"network_mode":"dhcp","tabula_relay":{"identity_key":"{{{Convert.ToBase64String(key)}}}","enrollment_token":"t"}}""");
        Assert.Equal(key, MachineIdentity.PrivateKeyFromHostConfig(host));
        Assert.Equal(FormatError.MissingEntry, Assert.Throws<PackageFormatException>(() => MachineIdentity.PrivateKeyFromHostConfig("""{"network_mode":"dhcp"}"""u8)).Error);
        Assert.Equal(FormatError.InvalidKey, Assert.Throws<PackageFormatException>(() => MachineIdentity.PrivateKeyFromHostConfig("""{"tabula_relay":{"identity_key":"AAAA"}}"""u8)).Error);
        Assert.Equal(FormatError.InvalidKey, Assert.Throws<PackageFormatException>(() =>
            MachineIdentity.PrivateKeyFromHostConfig(Encoding.UTF8.GetBytes($$$"""{"tabula_relay":{"identity_key":"{{{Convert.ToBase64String(new byte[33])}}}"}}"""))).Error);
        var e = Assert.Throws<PackageFormatException>(() => MachineIdentity.PrivateKeyFromHostConfig(Encoding.UTF8.GetBytes(
            $$$"""{"tabula_relay":{"identity_key":"{{{Convert.ToBase64String(key)[..43]}}}!"}}""")));
        Assert.DoesNotContain(Convert.ToBase64String(key)[..20], e.Message);
    }

    [Fact]
    public void Ticket_identity_key_with_json_escapes_is_read()
    {
        byte[] key = new byte[32];
        key[0] = 0xfb;   // base64 "+..." : System.Text.Json writes '+' as \u002B
        string json = System.Text.Json.JsonSerializer.Serialize(new Dictionary<string, Dictionary<string, string>>
            { ["tabula_relay"] = new() { ["identity_key"] = Convert.ToBase64String(key) } });
        Assert.Contains("\\u002B", json);
        Assert.Equal(key, MachineIdentity.PrivateKeyFromHostConfig(Encoding.UTF8.GetBytes(json)));
    }

    // ---- boot ticket ----------------------------------------------------------------------------------------------

    static BootTicketPayload Payload(byte[]? nonce = null) =>
        new(MachineIdentity.MachineId(RandomNumberGenerator.GetBytes(32)), nonce ?? RandomNumberGenerator.GetBytes(32),
            Sha256Digest.Of("archive"u8), 2, "relay", 1_796_000_000);

    [Fact]
    public void Ticket_signed_parses_back_and_verifies_with_its_key_only()
    {
        byte[] key = Ed25519.NewPrivateKey(), other = Ed25519.NewPrivateKey();
        var payload = Payload();
        byte[] bytes = BootTicket.Sign(payload, key);
        var ticket = BootTicket.Parse(bytes);
        Assert.Equal(payload, ticket.Payload);
        Assert.Equal(bytes, ticket.Bytes.ToArray());
        Assert.True(ticket.VerifySignature(Ed25519.PublicKeyOf(key)));
        Assert.False(ticket.VerifySignature(Ed25519.PublicKeyOf(other)));
        Assert.Equal(TicketError.BadSignature, Assert.Throws<BootTicketException>(() => ticket.EnsureSignedBy(Ed25519.PublicKeyOf(other))).Reason);
        Assert.True(ticket.Payload.HasNonce(payload.Nonce));
        Assert.True(bytes.Length < 1024, $"{bytes.Length} bytes");
    }

    [Fact]
    public void Ticket_payload_json_has_the_documented_keys_in_order()
    {
        var payload = Payload(new byte[32]) with { MachineId = new string('a', 32) };
        Assert.Equal("""{"version":1,"machine_id":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","nonce":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",""" +
            "\"package_sha256\":\"" + Sha256Digest.Of("archive"u8).Hex + "\",\"min_release\":2,\"machine_class\":\"relay\",\"issued_at\":1796000000}",
            Encoding.UTF8.GetString(payload.ToJson()));
    }

    [Fact]
    public void Ticket_with_a_tampered_payload_does_not_verify()
    {
        byte[] key = Ed25519.NewPrivateKey();
        var payload = Payload();
        byte[] bytes = BootTicket.Sign(payload, key);
        // Re-wrap another payload under the first one's signature.
        string signature = System.Text.Json.JsonDocument.Parse(bytes).RootElement.GetProperty("signature").GetString()!;
        byte[] forged = Encoding.UTF8.GetBytes($$"""{"payload":"{{Convert.ToBase64String((payload with { MinRelease = 0 }).ToJson())}}","signature":"{{signature}}"}""");
        Assert.False(BootTicket.Parse(forged).VerifySignature(Ed25519.PublicKeyOf(key)));
    }

    [Fact]
    public void Ticket_oversized_truncated_and_malformed_give_typed_errors()
    {
        byte[] bytes = BootTicket.Sign(Payload(), Ed25519.NewPrivateKey());
        Assert.Equal(TicketError.TooLarge, Assert.Throws<BootTicketException>(() => BootTicket.Parse(new byte[Limits.MaxBootTicketBytes + 1])).Reason);
        for (int cut = 0; cut < bytes.Length; cut += 7)
            Assert.Equal(TicketError.Malformed, Assert.Throws<BootTicketException>(() => BootTicket.Parse(bytes.AsSpan(0, cut))).Reason);
        foreach (string bad in (string[])["", "null", "[]", "{}", """{"payload":"!!","signature":"AA=="}""", """{"payload":"e30=","signature":"AA=="}""",
                     "\u00ff", """{"payload":1,"signature":2}"""])
            Assert.Equal(TicketError.Malformed, Assert.Throws<BootTicketException>(() => BootTicket.Parse(Encoding.UTF8.GetBytes(bad))).Reason);
    }

    [Fact]
    public void Ticket_payload_version_2_is_unsupported_and_bad_fields_malformed()
    {
        byte[] json = Payload().ToJson();
        string text = Encoding.UTF8.GetString(json);
        Assert.Equal(TicketError.UnsupportedVersion, Assert.Throws<BootTicketException>(() => BootTicketPayload.Parse(Encoding.UTF8.GetBytes(text.Replace("\"version\":1", "\"version\":2")))).Reason);
        foreach (var (from, to) in new[] { ("\"min_release\":2", "\"min_release\":-2"), ("\"machine_class\":\"relay\"", "\"machine_class\":\"RELAY\""),
                     ("\"issued_at\":1796000000", "\"issued_at\":-1"), ("\"package_sha256\":\"", "\"package_sha256\":\"A") , ("\"machine_id\":\"", "\"machine_id\":\"x") })
            Assert.Equal(TicketError.Malformed, Assert.Throws<BootTicketException>(() => BootTicketPayload.Parse(Encoding.UTF8.GetBytes(text.Replace(from, to)))).Reason);
    }

    // ---- ticket request -------------------------------------------------------------------------------------------

    [Theory, InlineData("relay"), InlineData(null)]
    public void Ticket_request_round_trips_and_verifies(string? machineClass)
    {
        byte[] identity = Ed25519.NewPrivateKey(), nonce = RandomNumberGenerator.GetBytes(32);
        var request = TicketRequest.Create(identity, nonce, machineClass);
        var parsed = TicketRequest.Parse(request.ToJson());
        Assert.Equal(request, parsed);
        Assert.True(parsed.Verify());
        Assert.Equal(MachineIdentity.MachineId(Ed25519.PublicKeyOf(identity)), parsed.MachineId);
        Assert.Equal(nonce, parsed.Nonce);
        Assert.False((parsed with { MachineClass = "other" }).Verify());
        Assert.False((parsed with { Nonce = RandomNumberGenerator.GetBytes(32) }).Verify());
        Assert.False((parsed with { IdentityKey = Ed25519.PublicKeyOf(Ed25519.NewPrivateKey()) }).Verify());
    }

    [Fact]
    public void Ticket_request_signs_the_documented_message()
    {
        byte[] identity = Ed25519.NewPrivateKey(), nonce = RandomNumberGenerator.GetBytes(32);
        var request = TicketRequest.Create(identity, nonce, "relay");
        byte[] message = [.. "tabula-boot-ticket-request-v1\n"u8, .. nonce, .. Ed25519.PublicKeyOf(identity), .. "relay"u8];
        Assert.True(Ed25519.Verify(Ed25519.PublicKeyOf(identity), message, request.Signature));
    }

    [Fact]
    public void Ticket_request_bad_input_gives_typed_errors()
    {
        Assert.Equal(TicketError.TooLarge, Assert.Throws<BootTicketException>(() => TicketRequest.Parse(new byte[Limits.MaxTicketRequestBytes + 1])).Reason);
        byte[] json = TicketRequest.Create(Ed25519.NewPrivateKey(), new byte[32], "relay").ToJson();
        for (int cut = 0; cut < json.Length; cut += 5)
            Assert.Equal(TicketError.Malformed, Assert.Throws<BootTicketException>(() => TicketRequest.Parse(json.AsSpan(0, cut))).Reason);
        string text = Encoding.UTF8.GetString(json);
        Assert.Equal(TicketError.Malformed, Assert.Throws<BootTicketException>(() => TicketRequest.Parse(Encoding.UTF8.GetBytes(text.Replace("\"relay\"", "\"Relay\"")))).Reason);
        Assert.Throws<ArgumentException>(() => TicketRequest.Create(Ed25519.NewPrivateKey(), new byte[31], null));
    }
}
