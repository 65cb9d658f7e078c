namespace Tabula.EndToEnd.Tests.Harness;

/// <summary>
/// A guest's TPM 2.0 (issue 19): a new swtpm made by <paramref name="manufacturer"/> (Tabula.Qemu's
/// <see cref="Swtpm.Manufacture"/>: EK certificate issued by the test's manufacturer CA), run for QEMU on a control
/// socket (<see cref="Qemu"/>, tpm-tis). swtpm ends when QEMU closes the socket; <see cref="Dispose"/> kills it if it
/// still runs and removes its state (throwing the chip away). The state and log live in a short /tmp directory: the
/// control socket's path must fit a sockaddr_un and hold no comma (QEMU's -chardev).
/// </summary>
public sealed class GuestTpm : IDisposable
{
    readonly string directory;
    readonly Swtpm swtpm;

    GuestTpm(string directory, Swtpm swtpm)
    {
        this.directory = directory;
        this.swtpm = swtpm;
    }

    /// <summary>What QEMU is given (<see cref="QemuOptions.Tpm"/>).</summary>
    public QemuTpm Qemu => new(Path.Combine(directory, "ctrl.sock"));

    /// <summary>swtpm's log.</summary>
    public string Log => File.Exists(swtpm.Log) ? File.ReadAllText(swtpm.Log) : "";

    /// <summary>Manufactures a TPM with <paramref name="manufacturer"/> and starts it for one QEMU.</summary>
    public static GuestTpm Start(TpmManufacturer manufacturer)
    {
        string directory = Directory.CreateTempSubdirectory("tabula-e2e-tpm-").FullName;
        try
        {
            string state = Path.Combine(directory, "state");
            Swtpm.Manufacture(state, manufacturer);
            return new GuestTpm(directory, Swtpm.StartForQemu(state, Path.Combine(directory, "ctrl.sock"), Path.Combine(directory, "swtpm.log")));
        }
        catch
        {
            Directory.Delete(directory, recursive: true);
            throw;
        }
    }

    public void Dispose()
    {
        swtpm.Dispose();
        try { Directory.Delete(directory, recursive: true); } catch (IOException) { }
    }
}
