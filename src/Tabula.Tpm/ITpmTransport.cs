namespace Tabula.Tpm;

/// <summary>
/// Carries one TPM command and brings back its response: the whole marshaled command in, the whole response out.
/// </summary>
/// <remarks>
/// Contract: one command at a time (<see cref="Tpm2"/> serializes its callers); <c>command</c> is a
/// complete command whose header size equals its length; the transport writes the complete response into
/// <c>response</c> (<see cref="TpmLimits.MaxMessageBytes"/> long) and returns its length, which is the size in the
/// response header. A transport does not interpret the bytes beyond framing. Failures to carry the bytes are
/// <see cref="TpmTransportException"/>. Implementations: Tabula.Linux's TpmDevice (/dev/tpmrm0, /dev/tpm0, through
/// Tabula.Machine), and the swtpm socket transport in the tests.
/// </remarks>
public interface ITpmTransport : IDisposable
{
    /// <summary>Sends <paramref name="command"/>, returns the length of the response written into <paramref name="response"/>.</summary>
    int Execute(ReadOnlySpan<byte> command, Span<byte> response);
}
