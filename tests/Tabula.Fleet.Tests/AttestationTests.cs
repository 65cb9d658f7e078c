using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json.Nodes;
using Tabula.Attestation;
using Tabula.Fleet.Api;
using Tabula.Fleet.Tests.Support;
using Tabula.Packaging.Crypto;
using Tabula.Qemu;

namespace Tabula.Fleet.Tests;

/// <summary>
/// Attestation at enrollment (issue 19) against a real controller with <c>--attestation required</c> and the lab
/// manufacturer's root as <c>--tpm-roots</c>, on SQLite and PostgreSQL. Each relay's TPM is a real swtpm manufactured by that
/// CA (tpm2-tools play the relay's TPM stack): the controller's challenge is answered by TPM2_ActivateCredential, the quote is
/// TPM2_Quote's. An attested relay serves and is listed with its AK certificate; one that fails a step, or sends no evidence,
/// is never put into service, and the machine record and the audit log name the step.
/// </summary>
public abstract class AttestationTests : IAsyncLifetime
{
    readonly string dir = $"/var/tmp/tabula-fleet-attest-{Environment.ProcessId}-{RandomNumberGenerator.GetHexString(8, lowercase: true)}";
    readonly List<IDisposable> owned = [];
    FleetHost? host;
    TpmManufacturer manufacturer = null!;
    string adminToken = "", enrollmentToken = "";

    protected abstract Task<string?> DatabaseAsync();

    static readonly byte[] Descriptor = """{"version":1,"os_pkg_url":"http://p/ospkg.zip","certificates":[],"signatures":[]}"""u8.ToArray();

    public async Task InitializeAsync()
    {
        if (Prerequisites.Missing(false, "swtpm", "swtpm_setup", "swtpm_localca", "tpm2_quote", "tpm2_activatecredential") is { } missing)
        {
            if (Prerequisites.IsCi) throw new InvalidOperationException(missing);
            return;
        }
        string? database = await DatabaseAsync();
        if (database is null) return;
        manufacturer = TpmManufacturer.OpenOrCreate(Path.Combine(dir, "ca"));
        host = await FleetHost.StartAsync(database, o => o with
        {
            Attestation = AttestationPolicy.Required, TpmRootsPath = manufacturer.CertificatePath,
            AttestationCaPath = Path.Combine(dir, "attestation-ca.pem"),
        });
        var ct = CancellationToken.None;
        var admin = await host.Staff.CreateStaffAsync("test", "alice", FleetFixture.AdminPassword, StaffRole.Admin, ct);
        adminToken = await host.Staff.CreateApiTokenAsync(admin, "tests", ct);
        enrollmentToken = await host.Enrollment.CreateEnrollmentTokenAsync("test", "relays", ct);
    }

    public async Task DisposeAsync()
    {
        if (host is not null) await host.DisposeAsync();
        foreach (var d in owned) d.Dispose();
        if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
    }

    HttpClient Admin => host!.Client(adminToken);

    /// <summary>A relay booted by stboot with <paramref name="digest"/>, its WireGuard key in PCR 14, enrolling with evidence.</summary>
    sealed class AttestingRelay(ToolsRelayTpm tpm)
    {
        public readonly byte[] Identity = Ed25519.NewPrivateKey();
        public readonly byte[] WireGuardKey = RandomNumberGenerator.GetBytes(32);
        public string MachineId => Enrollment.MachineId(Ed25519.PublicKeyOf(Identity));
        public ToolsRelayTpm Tpm => tpm;
    }

    AttestingRelay Boot(string digest, bool stboot = true)
    {
        var tpm = new ToolsRelayTpm(Path.Combine(dir, "relay-" + owned.Count), manufacturer);
        owned.Add(tpm);
        var relay = new AttestingRelay(tpm);
        if (stboot) tpm.MeasureStboot(Convert.FromHexString(digest), Descriptor, """{"version":1}"""u8.ToArray(), """{"version":1}"""u8.ToArray());
        tpm.Measure(14, Tabula.Tpm.Measurements.StbootEvent.WireGuardKey, relay.WireGuardKey);
        return relay;
    }

    async Task<(byte[] Nonce, CredentialChallenge? Challenge)> NonceAsync(AttestationKeys? keys)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/relay/v1/enroll/nonce");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", enrollmentToken);
        if (keys is not null) request.Content = JsonContent.Create(keys, FleetJson.Default.AttestationKeys);
        using var response = await host!.Client().SendAsync(request);
        Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
        var nonce = (await response.Content.ReadFromJsonAsync(FleetJson.Default.NonceResponse))!;
        return (Convert.FromHexString(nonce.Nonce), nonce.Credential);
    }

    /// <summary>The agent's enrollment: keys with the nonce request, the TPM's answer and a quote over nonce ‖ key with the enrollment.</summary>
    async Task<EnrollResponse> EnrollAsync(AttestingRelay relay, string digest, bool evidence = true, byte[]? quoteNonce = null)
    {
        var keys = new AttestationKeys(Convert.ToBase64String(relay.Tpm.EkCertificate), Convert.ToBase64String(relay.Tpm.AkPublic));
        var (nonce, challenge) = await NonceAsync(evidence ? keys : null);
        AttestationEvidence? wire = null;
        if (evidence)
        {
            Assert.NotNull(challenge);
            byte[] answer = relay.Tpm.Activate(Convert.FromBase64String(challenge.CredentialBlob!), Convert.FromBase64String(challenge.EncryptedSecret!))!;
            var (attest, signature) = relay.Tpm.Quote(AttestationBinding.QualifyingData(quoteNonce ?? nonce, relay.WireGuardKey));
            wire = new Evidence(relay.Tpm.EkCertificate, relay.Tpm.AkPublic, answer, attest, signature, relay.Tpm.EventLog()).ToWire();
        }
        byte[] signed = Ed25519.Sign(relay.Identity, Enrollment.Message(nonce, relay.WireGuardKey, digest));
        var body = new EnrollBody(Convert.ToBase64String(Ed25519.PublicKeyOf(relay.Identity)), Convert.ToBase64String(relay.WireGuardKey), digest,
            Convert.ToHexStringLower(nonce), Convert.ToBase64String(signed), null, wire);
        using var response = await TestRelay.PostEnrollAsync(host!.Client(), enrollmentToken, body);
        Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
        return (await response.Content.ReadFromJsonAsync(FleetJson.Default.EnrollResponse))!;
    }

    async Task AllowAsync(string digest) => Assert.Equal(HttpStatusCode.NoContent,
        (await Admin.PostAsJsonAsync("/api/v1/packages/allowed", new AllowPackageRequest(digest, "release 1"), FleetJson.Default.AllowPackageRequest)).StatusCode);

    async Task<MachineView> MachineAsync(string id) => (await Admin.GetFromJsonAsync($"/api/v1/machines/{id}", FleetJson.Default.MachineView))!;

    static ProvisionRequest Placement() => new("se-sto-wg-" + Guid.NewGuid().ToString("N")[..8], "se", "Sweden", "sto", "Stockholm", "31173", true,
        "185.65.134.1", "2a03:1b20:1:f011::a01f", 51820, 100, true, "new rack");

    Task<HttpResponseMessage> ProvisionAsync(string id) =>
        Admin.PostAsJsonAsync($"/api/v1/machines/{id}/provision", Placement(), FleetJson.Default.ProvisionRequest);

    async Task AssertRefusedIntoServiceAsync(string id, string? step)
    {
        var machine = await MachineAsync(id);
        Assert.Equal(step is null ? "absent" : "failed", machine.Attestation);
        Assert.Equal(step, machine.AttestationFailedStep);
        using var refused = await ProvisionAsync(id);
        var (status, error) = await Http.ErrorOf(refused);
        Assert.Equal(409, status);
        Assert.Equal("not_attested", error!.Error);
        var audit = await Admin.GetFromJsonAsync("/api/v1/audit?limit=50", FleetJson.Default.ListAuditView);
        Assert.Contains(audit!, e => e.Action == "machine.enroll" && e.Target == id
            && e.Detail!.Contains(step is null ? "attestation absent" : $"attestation failed at {step}", StringComparison.Ordinal));
    }

    [Fact]
    public async Task An_attested_relay_serves_and_is_listed_with_its_ak_certificate()
    {
        if (host is null) return;
        string digest = Http.NewDigest();
        await AllowAsync(digest);
        var relay = Boot(digest);
        var enrolled = await EnrollAsync(relay, digest);
        Assert.Equal("attested", enrolled.Attestation!.Status);
        Assert.Null(enrolled.Attestation.FailedStep);

        // The AK certificate certifies the TPM's AK for this machine and package, under the CA the controller publishes.
        string caPem = await host.Client().GetStringAsync("/app/v1/attestation-ca");
        using var ca = X509Certificate2.CreateFromPem(caPem);
        using var ak = X509CertificateLoader.LoadCertificate(Convert.FromBase64String(enrolled.Attestation.AkCertificate!));
        Assert.Equal(ca.SubjectName.RawData, ak.IssuerName.RawData);
        using (var caKey = ca.GetECDsaPublicKey()!)
            Assert.True(caKey.VerifyData(TbsOf(ak.RawData), SignatureOf(ak.RawData), HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence));
        Assert.Contains(relay.MachineId, ak.Subject);
        Assert.Equal(AttestationKey.ToPublicKey(AttestationKey.ParseAk(relay.Tpm.AkPublic)).ExportSubjectPublicKeyInfo(),
            ak.PublicKey.ExportSubjectPublicKeyInfo());
        Assert.Contains("urn:tabula:package:sha256:" + digest, ak.Extensions["2.5.29.17"]!.Format(false));

        var machine = await MachineAsync(relay.MachineId);
        Assert.Equal("attested", machine.Attestation);
        Assert.Equal(digest, machine.AttestedPackageDigest);
        using (var provisioned = await ProvisionAsync(relay.MachineId)) Assert.True(provisioned.IsSuccessStatusCode);
        using (var deployed = await Admin.PostAsJsonAsync($"/api/v1/machines/{relay.MachineId}/deploy", new ReasonRequest("go"), FleetJson.Default.ReasonRequest))
            Assert.True(deployed.IsSuccessStatusCode, await deployed.Content.ReadAsStringAsync());

        // The public list carries the attested digest, release and AK certificate, and still parses as the Mullvad app's.
        byte[] list = await host.Client().GetByteArrayAsync("/app/v1/relays");
        var listed = JsonNode.Parse(list)!["wireguard"]!["relays"]!.AsArray().Single(r => (string)r!["public_key"]! == Convert.ToBase64String(relay.WireGuardKey))!;
        Assert.Equal(digest, (string)listed["attested_package_digest"]!);
        Assert.Equal(0, (long)listed["attested_release"]!);
        Assert.Equal(enrolled.Attestation.AkCertificate, (string)listed["ak_certificate"]!);
        var (code, output) = await MullvadRelayListCheck.RunAsync(list);
        Assert.True(code == 0, output);
    }

    [Fact]
    public async Task Relays_failing_a_step_or_without_evidence_are_never_put_into_service()
    {
        if (host is null) return;
        string allowed = Http.NewDigest();
        await AllowAsync(allowed);

        // The package digest is not one staff allowed.
        string other = Http.NewDigest();
        var unallowed = Boot(other);
        Assert.Equal(AttestationStep.Package, (await EnrollAsync(unallowed, other)).Attestation!.FailedStep);
        await AssertRefusedIntoServiceAsync(unallowed.MachineId, AttestationStep.Package);

        // A quote made for an old nonce.
        var replayed = Boot(allowed);
        Assert.Equal(AttestationStep.Quote, (await EnrollAsync(replayed, allowed, quoteNonce: RandomNumberGenerator.GetBytes(32))).Attestation!.FailedStep);
        await AssertRefusedIntoServiceAsync(replayed.MachineId, AttestationStep.Quote);

        // Booted without stboot's measurements (the package kexec'd directly).
        var bare = Boot(allowed, stboot: false);
        Assert.Equal(AttestationStep.MeasuredBoot, (await EnrollAsync(bare, allowed)).Attestation!.FailedStep);
        await AssertRefusedIntoServiceAsync(bare.MachineId, AttestationStep.MeasuredBoot);

        // No evidence at all (no TPM, or an older agent).
        var none = Boot(allowed);
        Assert.Equal("absent", (await EnrollAsync(none, allowed, evidence: false)).Attestation!.Status);
        await AssertRefusedIntoServiceAsync(none.MachineId, null);

        // None of them is in the public list.
        string list = Encoding.UTF8.GetString(await host.Client().GetByteArrayAsync("/app/v1/relays"));
        foreach (var r in new[] { unallowed, replayed, bare, none }) Assert.DoesNotContain(Convert.ToBase64String(r.WireGuardKey), list);
    }

    static byte[] TbsOf(byte[] certificate)
    {
        var reader = new System.Formats.Asn1.AsnReader(certificate, System.Formats.Asn1.AsnEncodingRules.DER).ReadSequence();
        return reader.ReadEncodedValue().ToArray();
    }

    static byte[] SignatureOf(byte[] certificate)
    {
        var reader = new System.Formats.Asn1.AsnReader(certificate, System.Formats.Asn1.AsnEncodingRules.DER).ReadSequence();
        reader.ReadEncodedValue();
        reader.ReadSequence();
        return reader.ReadBitString(out _);
    }
}

public sealed class SqliteAttestationTests : AttestationTests, IDisposable
{
    private readonly SqliteDatabases databases = new("attest-db");
    protected override Task<string?> DatabaseAsync() => databases.NextAsync();
    public void Dispose() => databases.Dispose();
}

[Collection(PostgresCollection.Name)]
public sealed class PostgresAttestationTests : AttestationTests
{
    protected override Task<string?> DatabaseAsync() => PostgresDatabases.NextAsync();
}
