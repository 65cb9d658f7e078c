using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Tabula.Qemu;
using Tabula.Tpm;

namespace Tabula.Testing;

/// <summary>
/// What tests do with a server-mode <see cref="Swtpm"/> (Tabula.Qemu owns starting swtpm): talk to it with our TPM code
/// over its socket, and read it with tpm2-tools, the independent implementation.
/// </summary>
public static class SwtpmTesting
{
    /// <summary>A transport to <paramref name="swtpm"/> (one TCP connection per command, so tpm2-tools can use it in between).</summary>
    public static ITpmTransport Connect(this Swtpm swtpm) =>
        new SwtpmSocketTransport(swtpm.Port ?? throw new InvalidOperationException("an swtpm started for QEMU has no TCP port"));

    /// <summary>A <see cref="Tpm2"/> on <see cref="Connect"/>.</summary>
    public static Tpm2 Open(this Swtpm swtpm) => new(swtpm.Connect());

    /// <summary>Runs a tpm2-tools program against <paramref name="swtpm"/> and returns its standard output (skips, or
    /// fails under CI, when the program is missing).</summary>
    public static string Tools(this Swtpm swtpm, string program, params string[] arguments)
    {
        Prerequisites.Require(needsRoot: false, program);
        return Prerequisites.Run(program, ["-T", swtpm.Tcti, .. arguments]);
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
