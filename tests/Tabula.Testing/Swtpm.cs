using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Tabula.Tpm;

namespace Tabula.Testing;

/// <summary>
/// A real software TPM 2.0 (swtpm, Debian's swtpm package) started for one test: `swtpm socket --tpm2` on two
/// loopback ports (commands on <see cref="Port"/>, control on <see cref="Port"/>+1, as tpm2-tools' swtpm TCTI
/// expects) with its state in a temporary directory. Dispose stops it and removes the state it created.
/// </summary>
public sealed class Swtpm : IDisposable
{
    readonly Process process;
    readonly bool ownsState;

    Swtpm(Process process, int port, string stateDirectory, bool ownsState)
    {
        this.process = process;
        Port = port;
        StateDirectory = stateDirectory;
        this.ownsState = ownsState;
    }

    /// <summary>The TCP port that takes raw TPM commands.</summary>
    public int Port { get; }

    /// <summary>The directory holding the TPM's NVRAM.</summary>
    public string StateDirectory { get; }

    /// <summary>The tpm2-tools TCTI string for this TPM (<c>-T</c>).</summary>
    public string Tcti => $"swtpm:host=127.0.0.1,port={Port}";

    /// <summary>
    /// Starts swtpm. With <paramref name="startup"/> it runs TPM2_Startup(CLEAR) itself, as firmware would; without,
    /// the TPM is powered but not started (commands answer TPM_RC_INITIALIZE). <paramref name="stateDirectory"/>
    /// reuses a state (e.g. one swtpm_setup made with an EK certificate); it is then left in place.
    /// </summary>
    public static Swtpm Start(bool startup = true, string? stateDirectory = null)
    {
        Prerequisites.Require(needsRoot: false, "swtpm");
        bool owns = stateDirectory is null;
        stateDirectory ??= Directory.CreateTempSubdirectory("tabula-swtpm-").FullName;
        for (int attempt = 0; ; attempt++)
        {
            int port = FreePortPair();
            var start = new ProcessStartInfo(Prerequisites.FindOnPath("swtpm")!)
            {
                UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true,
            };
            foreach (string a in (string[])["socket", "--tpm2",
                         "--server", $"type=tcp,port={port},bindaddr=127.0.0.1",
                         "--ctrl", $"type=tcp,port={port + 1},bindaddr=127.0.0.1",
                         "--flags", startup ? "not-need-init,startup-clear" : "not-need-init",
                         "--tpmstate", $"dir={stateDirectory}"])
                start.ArgumentList.Add(a);
            var process = Process.Start(start) ?? throw new InvalidOperationException("could not start swtpm");
            if (WaitListening(process, port))
                return new Swtpm(process, port, stateDirectory, owns);
            string stderr = process.HasExited ? process.StandardError.ReadToEnd() : "";
            Stop(process);
            if (attempt == 4)
                throw new InvalidOperationException($"swtpm did not listen on 127.0.0.1:{port}: {stderr}");
        }
    }

    /// <summary>A transport to this TPM (one TCP connection per command, so tpm2-tools can use it in between).</summary>
    public ITpmTransport Connect() => new SwtpmSocketTransport(Port);

    /// <summary>A <see cref="Tpm2"/> on <see cref="Connect"/>.</summary>
    public Tpm2 Open() => new(Connect());

    /// <summary>Runs a tpm2-tools program against this TPM and returns its standard output.</summary>
    public string Tools(string program, params string[] arguments)
    {
        Prerequisites.Require(needsRoot: false, program);
        return Prerequisites.Run(program, ["-T", Tcti, .. arguments]);
    }

    /// <summary>Stops swtpm and removes the state directory it created.</summary>
    public void Dispose()
    {
        Stop(process);
        if (ownsState)
            try { Directory.Delete(StateDirectory, recursive: true); } catch (IOException) { }
    }

    static void Stop(Process process)
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
    }

    static bool WaitListening(Process process, int port)
    {
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromSeconds(10) && !process.HasExited)
        {
            try
            {
                using var probe = new TcpClient();
                probe.Connect(IPAddress.Loopback, port + 1); // the control port: probing the command port would use up its one client slot
                return true;
            }
            catch (SocketException)
            {
                Thread.Sleep(20);
            }
        }
        return false;
    }

    static int FreePortPair()
    {
        for (int i = 0; i < 100; i++)
        {
            int port = Random.Shared.Next(20000, 60000);
            try
            {
                var a = new TcpListener(IPAddress.Loopback, port);
                var b = new TcpListener(IPAddress.Loopback, port + 1);
                a.Start();
                try { b.Start(); b.Stop(); }
                finally { a.Stop(); }
                return port;
            }
            catch (SocketException) { }
        }
        throw new InvalidOperationException("no free pair of loopback ports");
    }
}

/// <summary>
/// swtpm's socket interface: raw TPM commands on a TCP connection, the response read back by its header size.
/// Connects for each command and closes after it, so other clients (tpm2-tools) get their turn.
/// </summary>
public sealed class SwtpmSocketTransport(int port) : ITpmTransport
{
    /// <inheritdoc />
    public int Execute(ReadOnlySpan<byte> command, Span<byte> response)
    {
        try
        {
            using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            socket.ReceiveTimeout = socket.SendTimeout = 30_000;
            socket.Connect(IPAddress.Loopback, port);
            socket.Send(command);
            ReadExactly(socket, response[..TpmLimits.HeaderBytes]);
            uint size = BinaryPrimitives.ReadUInt32BigEndian(response[2..]);
            if (size < TpmLimits.HeaderBytes || size > response.Length)
                throw new TpmTransportException($"swtpm answered with a response size of {size}");
            ReadExactly(socket, response[TpmLimits.HeaderBytes..(int)size]);
            return (int)size;
        }
        catch (SocketException e)
        {
            throw new TpmTransportException($"swtpm on 127.0.0.1:{port}: {e.SocketErrorCode}", e);
        }
    }

    static void ReadExactly(Socket socket, Span<byte> buffer)
    {
        while (!buffer.IsEmpty)
        {
            int n = socket.Receive(buffer);
            if (n == 0)
                throw new TpmTransportException("swtpm closed the connection inside a response");
            buffer = buffer[n..];
        }
    }

    /// <summary>Nothing to release: each command has its own connection.</summary>
    public void Dispose() { }
}
