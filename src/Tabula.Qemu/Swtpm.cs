using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Tabula.Qemu;

/// <summary>
/// One software TPM 2.0 (swtpm, Debian packages swtpm and swtpm-tools) for one machine: the repository's one owner of
/// swtpm (the lab's relays, the QEMU tests, and the TPM, attestation and boot tests all start theirs here).
/// <see cref="Manufacture"/> makes its state once, as a TPM vendor would: an RSA and an ECC endorsement key with EK
/// certificates and a platform certificate issued by a <see cref="TpmManufacturer"/>, the SHA-256 PCR bank active.
/// <see cref="StartForQemu"/> runs it on a control socket for QEMU's <c>-tpmdev emulator</c> (it ends when QEMU closes
/// the socket), <see cref="StartDaemonForQemu"/> the same as a daemon that outlives the caller (the lab);
/// <see cref="StartServer(string, string, bool)"/> runs it on loopback TCP ports for a host-side client
/// (tpm2-tools' <c>--tcti swtpm:host=127.0.0.1,port=P</c>, or raw commands on <see cref="Port"/>), started
/// (TPM2_Startup(CLEAR), as firmware would) or only powered. <see cref="Dispose"/> kills the process and removes the
/// socket; a state directory passed in belongs to the caller (it is the TPM: deleting it is throwing the chip away),
/// the temporary one <see cref="StartServer(bool)"/> makes is removed.
/// </summary>
public sealed class Swtpm : IDisposable
{
    /// <summary>Where swtpm_setup puts the RSA-2048 EK certificate (TCG EK Credential Profile, low range).</summary>
    public const uint RsaEkCertificateIndex = 0x01c00002;

    /// <summary>Where swtpm_setup puts the platform certificate.</summary>
    public const uint PlatformCertificateIndex = 0x01c08000;

    readonly Process process;
    readonly string? socket;
    string? ownedDirectory;

    Swtpm(Process process, string? socket, int? port, string stateDirectory, string log)
    {
        this.process = process;
        this.socket = socket;
        Port = port;
        StateDirectory = stateDirectory;
        Log = log;
    }

    /// <summary>The directory holding the TPM's state (its NVRAM: seeds, EK certificates, PCR banks' configuration).</summary>
    public string StateDirectory { get; }

    /// <summary>The data (command) port on 127.0.0.1 for a server-mode swtpm (the control port is one above), else null.</summary>
    public int? Port { get; }

    /// <summary>swtpm's log file.</summary>
    public string Log { get; }

    /// <summary>swtpm's pid.</summary>
    public int Pid => process.Id;

    /// <summary>The tpm2-tools TCTI string for a server-mode swtpm.</summary>
    public string Tcti => Port is { } port
        ? $"swtpm:host=127.0.0.1,port={port.ToString(CultureInfo.InvariantCulture)}"
        : throw new InvalidOperationException("an swtpm started for QEMU has no TCP port");

    /// <summary>
    /// Makes a new TPM's state in <paramref name="stateDirectory"/> (which must hold none) with
    /// <c>swtpm_setup --tpm2 --create-ek-cert --create-platform-cert</c>, certificates issued by
    /// <paramref name="manufacturer"/>. swtpm_setup's and swtpm_localca's configuration files are written to a
    /// temporary directory (deleted after), so the system's /etc/swtpm* and /var/lib/swtpm-localca are never used.
    /// </summary>
    public static void Manufacture(string stateDirectory, TpmManufacturer manufacturer)
    {
        string setup = Tool("swtpm_setup", "swtpm-tools");
        string localca = Tool("swtpm_localca", "swtpm-tools");
        Directory.CreateDirectory(stateDirectory);
        if (Directory.EnumerateFileSystemEntries(stateDirectory).Any())
            throw new QemuException(QemuFailure.StartFailed, $"{stateDirectory} already holds a TPM's state");
        string config = Directory.CreateTempSubdirectory("tabula-swtpm-setup-").FullName;
        try
        {
            string ca = Path.Combine(config, "localca");
            Directory.CreateDirectory(ca);
            File.WriteAllText(Path.Combine(config, "swtpm-localca.conf"),
                $"statedir = {ca}\nsigningkey = {manufacturer.KeyPath}\nissuercert = {manufacturer.CertificatePath}\n"
                + $"certserial = {Path.Combine(manufacturer.Directory, "certserial")}\n");
            File.WriteAllText(Path.Combine(config, "swtpm-localca.options"),
                "--platform-manufacturer Tabula\n--platform-version 1\n--platform-model QEMU\n");
            File.WriteAllText(Path.Combine(config, "swtpm_setup.conf"),
                $"create_certs_tool = {localca}\ncreate_certs_tool_config = {Path.Combine(config, "swtpm-localca.conf")}\n"
                + $"create_certs_tool_options = {Path.Combine(config, "swtpm-localca.options")}\nactive_pcr_banks = sha256\n");
            string log = Path.Combine(config, "setup.log");
            var (code, output) = Run(setup, ["--tpm2", "--tpm-state", stateDirectory, "--create-ek-cert", "--create-platform-cert",
                "--config", Path.Combine(config, "swtpm_setup.conf"), "--logfile", log], TimeSpan.FromSeconds(60));
            if (code != 0)
                throw new QemuException(QemuFailure.StartFailed,
                    $"swtpm_setup exited {code}: {output.Trim()} {(File.Exists(log) ? File.ReadAllText(log).Trim() : "")}");
        }
        finally
        {
            Directory.Delete(config, recursive: true);
        }
    }

    /// <summary>Starts swtpm on <paramref name="controlSocket"/> for QEMU (<see cref="QemuTpm"/>); it exits when QEMU
    /// disconnects (<c>--terminate</c>). Returns once the socket exists.</summary>
    public static Swtpm StartForQemu(string stateDirectory, string controlSocket, string log)
    {
        if (controlSocket.Contains(',', StringComparison.Ordinal))
            throw new ArgumentException("QEMU's -chardev cannot take a path with a comma", nameof(controlSocket));
        File.Delete(controlSocket);
        var process = Launch(["socket", "--tpm2", "--tpmstate", $"dir={stateDirectory}", "--ctrl", $"type=unixio,path={controlSocket}",
            "--terminate", "--log", $"file={log},level=1"]);
        var swtpm = new Swtpm(process, controlSocket, null, stateDirectory, log);
        return swtpm.WaitUntil(() => File.Exists(controlSocket), $"control socket {controlSocket}") is { } failed
            ? throw failed.Failure : swtpm;
    }

    /// <summary>
    /// Starts swtpm on <paramref name="controlSocket"/> for a QEMU that outlives the caller (the lab's relays: QEMU
    /// daemonizes too): swtpm daemonizes itself (<c>--daemon</c>, its own session, stdio on /dev/null, so it holds none of
    /// the caller's pipes) and writes its pid to <paramref name="pidFile"/>; with <c>--terminate</c> it ends when QEMU
    /// disconnects. Returns the daemon's pid once both the control socket and the pid file exist (bounded, 20 s): QEMU
    /// started before the socket exists fails to connect. The caller owns the process from then on (kill it by pid).
    /// </summary>
    public static int StartDaemonForQemu(string stateDirectory, string controlSocket, string log, string pidFile)
    {
        if (controlSocket.Contains(',', StringComparison.Ordinal))
            throw new ArgumentException("QEMU's -chardev cannot take a path with a comma", nameof(controlSocket));
        if (System.Text.Encoding.UTF8.GetByteCount(controlSocket) > 107)
            throw new ArgumentException($"{controlSocket} is longer than a Unix socket path may be (107 bytes)", nameof(controlSocket));
        File.Delete(controlSocket);
        File.Delete(pidFile);
        var (code, output) = Run(Tool("swtpm", "swtpm"), ["socket", "--tpm2", "--tpmstate", $"dir={stateDirectory}",
            "--ctrl", $"type=unixio,path={controlSocket}", "--terminate", "--log", $"file={log},level=1", "--pid", $"file={pidFile}", "--daemon"],
            TimeSpan.FromSeconds(20));
        if (code != 0)
            throw new QemuException(QemuFailure.StartFailed,
                $"swtpm exited {code}: {output.Trim()} {(File.Exists(log) ? File.ReadAllText(log).Trim() : "")}");
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            if (File.Exists(controlSocket) && File.Exists(pidFile)
                && int.TryParse(File.ReadAllText(pidFile).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out int pid) && pid > 0)
                return pid;
            if (deadline.Elapsed > TimeSpan.FromSeconds(20))
                throw new QemuException(QemuFailure.StartFailed,
                    $"swtpm did not open {controlSocket} within 20s: {(File.Exists(log) ? File.ReadAllText(log).Trim() : "")}");
            Thread.Sleep(20);
        }
    }

    /// <summary>Starts swtpm on 127.0.0.1 (a free port for commands, the next for control) for host-side clients, on the
    /// state in <paramref name="stateDirectory"/> (made by <see cref="Manufacture"/>, or empty for a new TPM with no EK
    /// certificate). With <paramref name="startup"/> swtpm runs TPM2_Startup(CLEAR) itself, as firmware would; without,
    /// the TPM is powered but not started (commands answer TPM_RC_INITIALIZE until a TPM2_Startup). Returns once it
    /// accepts connections.</summary>
    public static Swtpm StartServer(string stateDirectory, string log, bool startup = true) =>
        StartServer(stateDirectory, log, startup, ownedDirectory: null);

    /// <summary>Starts a new TPM (no EK certificate) as <see cref="StartServer(string, string, bool)"/> does, its state
    /// and log in a temporary directory that <see cref="Dispose"/> removes.</summary>
    public static Swtpm StartServer(bool startup = true)
    {
        string directory = Directory.CreateTempSubdirectory("tabula-swtpm-").FullName;
        try
        {
            string state = Path.Combine(directory, "state");
            Directory.CreateDirectory(state);
            return StartServer(state, Path.Combine(directory, "swtpm.log"), startup, directory);
        }
        catch
        {
            Directory.Delete(directory, recursive: true);
            throw;
        }
    }

    static Swtpm StartServer(string stateDirectory, string log, bool startup, string? ownedDirectory)
    {
        for (int attempt = 0; ; attempt++)
        {
            int port = FreePortPair();
            string p = port.ToString(CultureInfo.InvariantCulture), c = (port + 1).ToString(CultureInfo.InvariantCulture);
            var process = Launch(["socket", "--tpm2", "--tpmstate", $"dir={stateDirectory}", "--server", $"type=tcp,port={p},bindaddr=127.0.0.1",
                "--ctrl", $"type=tcp,port={c},bindaddr=127.0.0.1", "--flags", startup ? "not-need-init,startup-clear" : "not-need-init",
                "--log", $"file={log},level=1"]);
            var swtpm = new Swtpm(process, null, port, stateDirectory, log);
            // The control port: a probe of the command port would take its one client slot from the first command.
            if (swtpm.WaitUntil(() => Accepts(port + 1), $"127.0.0.1:{c}") is not { } failed)
            {
                swtpm.ownedDirectory = ownedDirectory;
                return swtpm;
            }
            if (!failed.Exited || attempt == 3)
                throw failed.Failure;
            // it exited: the port was taken between the probe and the bind, so try another
        }
    }

    /// <summary>Waits (20 s at most) until <paramref name="ready"/>. If swtpm exits or the time runs out it is disposed
    /// and the reason returned, with whether it exited (then a retry on another port may help); null when ready.</summary>
    (QemuException Failure, bool Exited)? WaitUntil(Func<bool> ready, string what)
    {
        var deadline = Stopwatch.StartNew();
        while (!ready())
        {
            bool exited = process.HasExited;
            if (exited || deadline.Elapsed > TimeSpan.FromSeconds(20))
            {
                string log = File.Exists(Log) ? File.ReadAllText(Log).Trim() : "";
                string stderr = exited ? process.StandardError.ReadToEnd().Trim() : "";
                Dispose();
                return (new QemuException(QemuFailure.StartFailed, $"swtpm did not open {what}: {stderr} {log}"), exited);
            }
            Thread.Sleep(20);
        }
        return null;
    }

    static bool Accepts(int port)
    {
        try
        {
            using var client = new TcpClient();
            client.Connect(IPAddress.Loopback, port);
            return true;
        }
        catch (SocketException) { return false; }
    }

    static int FreePortPair()
    {
        for (int i = 0; i < 50; i++)
        {
            using var probe = new TcpListener(IPAddress.Loopback, 0);
            probe.Start();
            int port = ((IPEndPoint)probe.LocalEndpoint).Port;
            probe.Stop();
            if (port >= 65535)
                continue;
            try
            {
                using var next = new TcpListener(IPAddress.Loopback, port + 1);
                next.Start();
                next.Stop();
                return port;
            }
            catch (SocketException) { }
        }
        throw new QemuException(QemuFailure.StartFailed, "no two adjacent free loopback ports for swtpm");
    }

    static Process Launch(IReadOnlyList<string> arguments)
    {
        string swtpm = Tool("swtpm", "swtpm");
        var start = new ProcessStartInfo(swtpm) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (string argument in arguments)
            start.ArgumentList.Add(argument);
        try { return Process.Start(start) ?? throw new QemuException(QemuFailure.StartFailed, "could not start swtpm"); }
        catch (System.ComponentModel.Win32Exception e) { throw new QemuException(QemuFailure.StartFailed, $"could not start swtpm: {e.Message}", e); }
    }

    static (int Code, string Output) Run(string file, IReadOnlyList<string> arguments, TimeSpan timeout)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (string argument in arguments)
            start.ArgumentList.Add(argument);
        using var process = Process.Start(start) ?? throw new QemuException(QemuFailure.StartFailed, $"could not start {file}");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(timeout))
        {
            process.Kill(entireProcessTree: true);
            throw new QemuException(QemuFailure.Timeout, $"{file} did not finish within {timeout.TotalSeconds:0}s");
        }
        process.WaitForExit();
        return (process.ExitCode, stdout.Result + stderr.Result);
    }

    static string Tool(string name, string package) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Concat(["/usr/local/bin", "/usr/bin", "/bin"]).Select(d => Path.Combine(d, name)).FirstOrDefault(File.Exists)
        ?? throw new QemuException(QemuFailure.Missing, $"{name} is missing (package {package})");

    /// <summary>Kills swtpm (if it still runs) and removes its control socket, and the temporary directory
    /// <see cref="StartServer(bool)"/> made.</summary>
    public void Dispose()
    {
        try
        {
            if (!process.HasExited)
            {
                process.Kill();
                process.WaitForExit(5000);
            }
        }
        catch (InvalidOperationException) { }
        process.Dispose();
        if (socket is not null)
            File.Delete(socket);
        if (ownedDirectory is not null)
            try { Directory.Delete(ownedDirectory, recursive: true); } catch (IOException) { }
    }
}
