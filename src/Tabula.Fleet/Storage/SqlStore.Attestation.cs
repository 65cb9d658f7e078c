using System.Data.Common;

namespace Tabula.Fleet.Storage;

public sealed partial class SqlStore
{
    private sealed partial class Tx
    {
        public Task InsertAttestationChallengeAsync(AttestationChallenge c) => Exec(
            "INSERT INTO attestation_challenges (nonce, ak_name, ek_sha256, secret_sha256, expires_at) VALUES (@n, @a, @e, @s, @x)",
            ("n", c.Nonce), ("a", c.AkName), ("e", c.EkSha256), ("s", c.SecretSha256), ("x", c.ExpiresAt));

        public async Task<AttestationChallenge?> TakeAttestationChallengeAsync(byte[] nonce)
        {
            var found = (await Query("SELECT nonce, ak_name, ek_sha256, secret_sha256, expires_at FROM attestation_challenges WHERE nonce = @n" + forUpdate,
                r => new AttestationChallenge(B(r, 0), B(r, 1), B(r, 2), B(r, 3), L(r, 4)), ("n", nonce))).FirstOrDefault();
            // Expired ones go too, with every call: a challenge row lives as long as its nonce.
            await Exec("DELETE FROM attestation_challenges WHERE nonce = @n OR expires_at <= @now", ("n", nonce), ("now", Now));
            return found is { } f && f.ExpiresAt > Now ? f : null;
        }

        private const string AttestationColumns =
            "machine_id, status, failed_step, detail, package_digest, release_number, ak_certificate, ek_sha256, attested_at";

        private static byte[]? NB(DbDataReader r, int i) => r.IsDBNull(i) ? null : (byte[])r.GetValue(i);

        private static MachineAttestation MapAttestation(DbDataReader r) => new(r.GetString(0), AttestationNames.ParseStatus(r.GetString(1)),
            S(r, 2), S(r, 3), S(r, 4), L(r, 5), NB(r, 6), NB(r, 7), L(r, 8));

        public async Task<MachineAttestation?> GetMachineAttestationAsync(string machineId) =>
            (await Query($"SELECT {AttestationColumns} FROM machine_attestation WHERE machine_id = @m", MapAttestation, ("m", machineId))).FirstOrDefault();

        public Task SaveMachineAttestationAsync(MachineAttestation a) => Exec(
            $"INSERT INTO machine_attestation ({AttestationColumns}) VALUES (@m, @s, @f, @d, @p, @r, @c, @e, @at) " +
            "ON CONFLICT (machine_id) DO UPDATE SET status = @s, failed_step = @f, detail = @d, package_digest = @p, release_number = @r, " +
            "ak_certificate = @c, ek_sha256 = @e, attested_at = @at",
            ("m", a.MachineId), ("s", a.Status.Name()), ("f", a.FailedStep), ("d", a.Detail), ("p", a.PackageDigest), ("r", a.Release),
            ("c", a.AkCertificate), ("e", a.EkSha256), ("at", a.AttestedAt));

        public async Task<IReadOnlyList<MachineAttestation>> ListMachineAttestationsAsync() =>
            await Query($"SELECT {AttestationColumns} FROM machine_attestation", MapAttestation);
    }
}
