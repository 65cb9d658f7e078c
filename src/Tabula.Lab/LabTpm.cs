using Tabula.Qemu;

namespace Tabula.Lab;

/// <summary>
/// The relays' TPMs (issue 19): one swtpm per relay machine as its TPM 2.0 (QEMU's <c>tpm-tis</c>), on Tabula.Qemu's one
/// owner of swtpm. `up` makes the lab's manufacturer CA (DIR/tpm, <see cref="TpmManufacturer"/>) and manufactures each
/// relay's TPM state once (machines/relay-N/tpm: EK certificate issued by that CA); each power-on starts swtpm on that
/// state as a daemon (it outlives `up`, like QEMU) before QEMU connects to its control socket. The state is the chip:
/// it stays across power cycles (`lab attack`) and reboots, and `down` deletes it with the machine's directory.
/// </summary>
internal static class LabTpm
{
    /// <summary>The manufacturer CA's directory in the lab directory.</summary>
    public static string ManufacturerDirectory(string directory) => Path.Combine(directory, "tpm");

    /// <summary>The manufacturer CA certificate (PEM), what the controller's and a customer's <c>--tpm-roots</c> name.</summary>
    public static string ManufacturerCertificate(string directory) => Path.Combine(ManufacturerDirectory(directory), TpmManufacturer.CertificateFile);

    /// <summary>The TPM state of the machine in <paramref name="machineDirectory"/>.</summary>
    static string State(string machineDirectory) => Path.Combine(machineDirectory, "tpm");

    /// <summary>True when the machine has a TPM (its state was manufactured by `up`).</summary>
    public static bool Has(string machineDirectory) => Directory.Exists(State(machineDirectory));

    /// <summary>Manufactures a new TPM for the machine in <paramref name="machineDirectory"/> (swtpm_setup, EK certificate by
    /// <paramref name="manufacturer"/>).</summary>
    public static void Manufacture(string machineDirectory, TpmManufacturer manufacturer)
    {
        try { Swtpm.Manufacture(State(machineDirectory), manufacturer); }
        catch (QemuException e) { throw new LabException(e.Message, e); }
    }

    /// <summary>
    /// Powers the machine's TPM on: swtpm on its state as a daemon, recorded in <paramref name="state"/> (its control socket is
    /// the marker `down` checks before it kills), returned once the socket exists. QEMU connects to it at start.
    /// </summary>
    public static QemuTpm PowerOn(LabState state, string name, string machineDirectory)
    {
        string socket = Path.Combine(machineDirectory, "swtpm.sock");
        int pid;
        try { pid = Swtpm.StartDaemonForQemu(State(machineDirectory), socket, Path.Combine(machineDirectory, "swtpm.log"), Path.Combine(machineDirectory, "swtpm.pid")); }
        catch (Exception e) when (e is QemuException or ArgumentException) { throw new LabException($"{name}'s TPM: {e.Message}", e); }
        state.Add(new LabProcess(ProcessName(name), pid, socket));
        return new QemuTpm(socket, TpmInterface.Tis);
    }

    /// <summary>The name of a machine's swtpm in the state's process list.</summary>
    public static string ProcessName(string machine) => "swtpm " + machine;
}
