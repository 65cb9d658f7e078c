namespace Tabula.Fleet.Storage;

/// <summary>Attestation (issue 19, schema 12): credential-activation challenges by enrollment nonce, and each machine's
/// attestation record.</summary>
public interface IAttestationTx : IMachineRowTx
{
    Task InsertAttestationChallengeAsync(AttestationChallenge challenge);
    /// <summary>Deletes and returns the challenge made for <paramref name="nonce"/> (null if none, or expired).</summary>
    Task<AttestationChallenge?> TakeAttestationChallengeAsync(byte[] nonce);
    Task<MachineAttestation?> GetMachineAttestationAsync(string machineId);
    Task SaveMachineAttestationAsync(MachineAttestation attestation);
    Task<IReadOnlyList<MachineAttestation>> ListMachineAttestationsAsync();
}
