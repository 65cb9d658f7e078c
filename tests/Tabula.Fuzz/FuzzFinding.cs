using System.Diagnostics.CodeAnalysis;

namespace Tabula.Fuzz;

/// <summary>
/// A parser accepted input that its slow re-check disagrees with (parse, write, parse gave another value; a parsed
/// value breaks an invariant the parser promises). Any exception other than the parser's own typed one is a finding
/// too; this one says which check failed. The message carries the input as hex so a run's log reproduces it.
/// </summary>
public sealed class FuzzFinding(string message) : Exception(message)
{
    /// <summary>Fails with <paramref name="check"/> when <paramref name="holds"/> is false.</summary>
    public static void Check([DoesNotReturnIf(false)] bool holds, string check, ReadOnlySpan<byte> input)
    {
        if (!holds)
            Fail(check, input);
    }

    [DoesNotReturn]
    public static void Fail(string check, ReadOnlySpan<byte> input) =>
        throw new FuzzFinding($"{check}; input {input.Length} bytes: {Convert.ToHexString(input[..Math.Min(input.Length, 2048)])}");
}
