namespace Tabula.Tpm;

/// <summary>
/// A TPM 2.0 behind a transport, with the commands Tabula uses. One command is in flight at a time: callers on
/// several threads are serialized here, as the kernel's /dev/tpm0 requires.
/// </summary>
/// <remarks>
/// Each command lives in a partial file by concern (<c>Tpm.Pcr.cs</c>, …): it marshals its parameters, runs
/// through <see cref="Run"/>, and hands the response parameters to an internal static parser that the tests and
/// fuzz targets call with hostile bytes. The instance owns the transport and disposes it.
/// </remarks>
public sealed partial class Tpm2(ITpmTransport transport) : IDisposable
{
    /// <summary>How often a command answered TPM_RC_RETRY, _YIELDED or _TESTING is sent again.</summary>
    const int MaxRetries = 5;

    readonly Lock gate = new();
    readonly byte[] commandBuffer = new byte[TpmLimits.MaxMessageBytes];
    readonly byte[] responseBuffer = new byte[TpmLimits.MaxMessageBytes];

    /// <summary>Disposes the transport.</summary>
    public void Dispose() => transport.Dispose();

    /// <summary>Starts a command: header with a size to be filled in by <see cref="Run"/>.</summary>
    internal static TpmWriter Begin(Span<byte> buffer, TpmCommandCode command, bool sessions)
    {
        var w = new TpmWriter(buffer);
        w.WriteUInt16((ushort)(sessions ? TpmStructureTag.Sessions : TpmStructureTag.NoSessions));
        w.WriteUInt32(0);
        w.WriteUInt32((uint)command);
        return w;
    }

    /// <summary>The empty authValue: PCRs, and hierarchies nobody set a password on.</summary>
    internal static readonly byte[] EmptyPassword = [];

    /// <summary>
    /// Writes the authorization area for a command that needs only password (TPM_RS_PW) authorizations, one per
    /// entry in <paramref name="passwords"/> (empty for the usual empty authValue).
    /// </summary>
    internal static void WritePasswordSessions(ref TpmWriter w, params ReadOnlySpan<byte[]> passwords)
    {
        int start = w.BeginSized32();
        foreach (byte[] password in passwords)
            WritePasswordSession(ref w, password);
        w.EndSized32(start);
    }

    /// <summary>One TPMS_AUTH_COMMAND for TPM_RS_PW: empty nonce, continueSession, the password as the hmac.</summary>
    internal static void WritePasswordSession(ref TpmWriter w, ReadOnlySpan<byte> password)
    {
        w.WriteUInt32(TpmHandles.PasswordSession);
        w.WriteTpm2B([]);
        w.WriteByte(SessionAttributes.ContinueSession);
        w.WriteTpm2B(password);
    }

    /// <summary>
    /// One TPMS_AUTH_COMMAND for a policy session whose policy needs neither authValue nor password (the EK's
    /// PolicySecret): a fresh caller nonce, continueSession off (the TPM flushes the session after the command),
    /// no HMAC (the session is unbound and unsalted, so its HMAC key is empty and the TPM does not check it).
    /// </summary>
    internal static void WritePolicySession(ref TpmWriter w, uint session)
    {
        w.WriteUInt32(session);
        Span<byte> nonce = stackalloc byte[16];
        System.Security.Cryptography.RandomNumberGenerator.Fill(nonce);
        w.WriteTpm2B(nonce);
        w.WriteByte(0);
        w.WriteTpm2B([]);
    }

    /// <summary>
    /// Finishes the command in <paramref name="w"/>, sends it, and returns the response parameters copied out of
    /// the shared buffer (the lock is released on return). Retries the warnings that ask for it.
    /// </summary>
    internal byte[] Run(ref TpmWriter w, TpmCommandCode command, int handleCount, int sessionCount, out uint handle)
    {
        w.PatchUInt32(2, (uint)w.Position);
        var bytes = w.Written;
        for (int attempt = 0; ; attempt++)
        {
            int length = transport.Execute(bytes, responseBuffer);
            if (length < 0 || length > responseBuffer.Length)
                throw new TpmTransportException($"TPM2_{command}: the transport returned a length of {length}");
            try
            {
                var response = TpmResponse.Parse(responseBuffer.AsSpan(0, length), command, handleCount, sessionCount);
                handle = handleCount > 0 ? response.Handle : 0;
                return response.Parameters.ToArray();
            }
            catch (TpmErrorException e) when (e.Code.IsRetryable && attempt < MaxRetries)
            {
                Thread.Sleep(20 << attempt);
            }
        }
    }

    /// <summary>Runs a command built by <paramref name="build"/> in the shared buffer, under the lock.</summary>
    internal byte[] Execute(TpmCommandCode command, int handleCount, int sessionCount, CommandBuilder build, out uint handle)
    {
        lock (gate)
        {
            var w = Begin(commandBuffer, command, sessionCount > 0);
            build(ref w);
            return Run(ref w, command, handleCount, sessionCount, out handle);
        }
    }

    /// <summary><see cref="Execute(TpmCommandCode, int, int, CommandBuilder, out uint)"/> for commands that return no handle.</summary>
    internal byte[] Execute(TpmCommandCode command, int sessionCount, CommandBuilder build) =>
        Execute(command, 0, sessionCount, build, out _);

    /// <summary>Writes a command's handles, authorization area and parameters after its header.</summary>
    internal delegate void CommandBuilder(ref TpmWriter w);
}

/// <summary>TPMA_SESSION bits (part 2, 8.4).</summary>
internal static class SessionAttributes
{
    public const byte ContinueSession = 0x01;
}
