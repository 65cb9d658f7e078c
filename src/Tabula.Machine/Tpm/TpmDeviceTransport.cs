using Tabula.Linux;
using Tabula.Linux.Tpm;
using Tabula.Tpm;

namespace Tabula.Machine.Tpm;

/// <summary>
/// Joins the kernel device (Tabula.Linux) to the TPM commands (Tabula.Tpm), so neither library references the
/// other: stboot and the relay agent open their TPM with <see cref="TryOpen"/>.
/// </summary>
public sealed class TpmDeviceTransport(TpmDevice device) : ITpmTransport
{
    /// <summary>
    /// The machine's TPM (/dev/tpmrm0, else /dev/tpm0) as a <see cref="Tpm2"/>, or null when it has none.
    /// A device that is there but cannot be opened throws <see cref="LinuxException"/>.
    /// </summary>
    public static Tpm2? TryOpen(IReadOnlyList<string>? paths = null) =>
        TpmDevice.TryOpen(paths) is { } device ? new Tpm2(new TpmDeviceTransport(device)) : null;

    /// <summary>The device file in use.</summary>
    public string Path => device.Path;

    /// <inheritdoc />
    public int Execute(ReadOnlySpan<byte> command, Span<byte> response)
    {
        try
        {
            return device.Transmit(command, response);
        }
        catch (LinuxException e)
        {
            throw new TpmTransportException($"{device.Path}: {e.Message}", e);
        }
    }

    /// <summary>Closes the device.</summary>
    public void Dispose() => device.Dispose();
}
