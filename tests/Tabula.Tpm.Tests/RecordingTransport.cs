using Tabula.Tpm;

namespace Tabula.Tpm.Tests;

/// <summary>Passes commands to a real transport and keeps every response, for the parser and fuzz-corpus tests.</summary>
sealed class RecordingTransport(ITpmTransport inner) : ITpmTransport
{
    public List<(byte[] Command, byte[] Response)> Exchanges { get; } = [];

    public int Execute(ReadOnlySpan<byte> command, Span<byte> response)
    {
        int n = inner.Execute(command, response);
        Exchanges.Add((command.ToArray(), response[..n].ToArray()));
        return n;
    }

    public void Dispose() => inner.Dispose();
}
