namespace Tabula.Tpm;

public sealed partial class Tpm2
{
    /// <summary>TPM_SE: the kinds of session StartAuthSession makes.</summary>
    const byte SessionPolicy = 0x01;

    /// <summary>
    /// TPM2_StartAuthSession for an unbound, unsalted SHA-256 policy session with no parameter encryption.
    /// Returns the session handle (0x03xxxxxx). End it with <see cref="FlushContext"/> unless a command used it
    /// with continueSession off.
    /// </summary>
    public uint StartPolicySession()
    {
        byte[] nonce = System.Security.Cryptography.RandomNumberGenerator.GetBytes(16);
        byte[] parameters = Execute(TpmCommandCode.StartAuthSession, 1, 0, (ref TpmWriter w) =>
        {
            w.WriteUInt32(TpmHandles.Null); // tpmKey: unsalted
            w.WriteUInt32(TpmHandles.Null); // bind: unbound
            w.WriteTpm2B(nonce);
            w.WriteTpm2B([]);               // encryptedSalt
            w.WriteByte(SessionPolicy);
            w.WriteUInt16((ushort)TpmAlgorithm.Null); // symmetric: none
            w.WriteUInt16((ushort)TpmAlgorithm.Sha256);
        }, out uint session);
        ParseStartAuthSession(parameters);
        return session;
    }

    /// <summary>
    /// TPM2_PolicySecret(<paramref name="authHandle"/>) on <paramref name="policySession"/>: proves the authValue
    /// of a hierarchy (TPM_RH_ENDORSEMENT for the EK's policy) with the empty password; no expiration, no cpHash.
    /// </summary>
    public void PolicySecret(uint authHandle, uint policySession, ReadOnlySpan<byte> hierarchyAuth = default)
    {
        byte[] auth = hierarchyAuth.ToArray();
        byte[] parameters = Execute(TpmCommandCode.PolicySecret, 1, (ref TpmWriter w) =>
        {
            w.WriteUInt32(authHandle);
            w.WriteUInt32(policySession);
            WritePasswordSessions(ref w, auth);
            w.WriteTpm2B([]);   // nonceTPM: not bound to the session's nonce, as expiration is 0
            w.WriteTpm2B([]);   // cpHashA
            w.WriteTpm2B([]);   // policyRef
            w.WriteUInt32(0);   // expiration
        });
        ParsePolicySecret(parameters);
    }

    /// <summary>
    /// TPM2_ActivateCredential: the TPM decrypts <paramref name="credentialBlob"/> and <paramref name="secret"/>
    /// (MakeCredential's output, TPM2B_ID_OBJECT and TPM2B_ENCRYPTED_SECRET contents) with the EK
    /// <paramref name="ek"/> and releases the credential only if it was made for the name of
    /// <paramref name="activated"/> (the AK). The EK is authorized by a fresh PolicySecret(TPM_RH_ENDORSEMENT)
    /// session, the AK by its (empty) password.
    /// </summary>
    public byte[] ActivateCredential(uint activated, uint ek, ReadOnlySpan<byte> credentialBlob, ReadOnlySpan<byte> secret)
    {
        byte[] blob = credentialBlob.ToArray(), encrypted = secret.ToArray();
        uint session = StartPolicySession();
        try
        {
            PolicySecret(TpmHandles.Endorsement, session);
            byte[] parameters = Execute(TpmCommandCode.ActivateCredential, 2, (ref TpmWriter w) =>
            {
                w.WriteUInt32(activated);
                w.WriteUInt32(ek);
                int start = w.BeginSized32();
                WritePasswordSession(ref w, EmptyPassword);
                WritePolicySession(ref w, session);
                w.EndSized32(start);
                w.WriteTpm2B(blob);
                w.WriteTpm2B(encrypted);
            });
            return ParseActivateCredential(parameters);
        }
        catch (TpmException)
        {
            TryFlush(session); // continueSession is off, so the TPM ended the session only if the command succeeded
            throw;
        }
    }

    void TryFlush(uint handle)
    {
        try { FlushContext(handle); }
        catch (TpmErrorException) { } // already gone
    }

    /// <summary>Parses TPM2_StartAuthSession's response parameters: nonceTPM.</summary>
    internal static byte[] ParseStartAuthSession(ReadOnlySpan<byte> parameters)
    {
        var r = new TpmReader(parameters);
        byte[] nonce = r.ReadTpm2B(TpmLimits.MaxNonceBytes, "TPM2_StartAuthSession.nonceTPM").ToArray();
        r.ExpectEnd("TPM2_StartAuthSession response");
        return nonce;
    }

    /// <summary>Parses TPM2_PolicySecret's response parameters (timeout, policyTicket), which we do not use.</summary>
    internal static void ParsePolicySecret(ReadOnlySpan<byte> parameters)
    {
        var r = new TpmReader(parameters);
        r.ReadTpm2B(TpmLimits.MaxTpm2BBytes, "TPM2_PolicySecret.timeout");
        r.ReadUInt16("TPMT_TK_AUTH.tag");
        r.ReadUInt32("TPMT_TK_AUTH.hierarchy");
        r.ReadTpm2B(TpmLimits.MaxDigestBytes, "TPMT_TK_AUTH.digest");
        r.ExpectEnd("TPM2_PolicySecret response");
    }

    /// <summary>Parses TPM2_ActivateCredential's response parameters: certInfo.</summary>
    internal static byte[] ParseActivateCredential(ReadOnlySpan<byte> parameters)
    {
        var r = new TpmReader(parameters);
        byte[] secret = r.ReadTpm2B(TpmLimits.MaxDigestBytes, "TPM2_ActivateCredential.certInfo").ToArray();
        r.ExpectEnd("TPM2_ActivateCredential response");
        return secret;
    }
}
