namespace Tabula.Qemu;

/// <summary>How the guest sees its TPM 2.0.</summary>
public enum TpmInterface
{
    /// <summary>TPM Interface Specification on the ISA bus (<c>tpm-tis</c>): works on QEMU's default PC machine.</summary>
    Tis,
    /// <summary>Command Response Buffer (<c>tpm-crb</c>): what firmware TPMs of current PCs show; for q35.</summary>
    Crb,
}

/// <summary>A TPM 2.0 for the guest, emulated by an swtpm listening on <paramref name="ControlSocket"/>
/// (<c>-chardev socket -tpmdev emulator -device tpm-tis|tpm-crb</c>); see <see cref="Swtpm"/>.</summary>
/// <param name="ControlSocket">swtpm's control socket (a Unix socket path).</param>
/// <param name="Interface">The device the guest sees.</param>
public sealed record QemuTpm(string ControlSocket, TpmInterface Interface = TpmInterface.Tis);
