namespace Tabula.Linux.Netlink.Netfilter;

/// <summary>One message of a batch that the kernel refused.</summary>
/// <param name="Index">Position of the message in the batch, from 0 (batch begin/end not counted).</param>
/// <param name="Operation">What the message did, e.g. <c>NEWRULE inet tabula_relay forward #3 (isolation)</c>; names only, never addresses.</param>
/// <param name="Errno">The error the kernel gave it.</param>
public sealed record NfTablesFailure(int Index, string Operation, Errno Errno);

/// <summary>
/// The kernel refused an nf_tables batch: nothing of it was applied (the transaction is aborted as a whole).
/// <see cref="Failures"/> names every refused message; <see cref="Errno"/> is the first one's error, or the
/// commit's when every message was accepted and the commit itself failed.
/// </summary>
public sealed class NfTablesException : Exception
{
    internal NfTablesException(IReadOnlyList<NfTablesFailure> failures, Errno commitError)
        : base(Describe(failures, commitError))
    {
        Failures = failures;
        Errno = failures.Count > 0 ? failures[0].Errno : commitError;
    }

    /// <summary>The refused messages, in batch order.</summary>
    public IReadOnlyList<NfTablesFailure> Failures { get; }

    /// <summary>The first error.</summary>
    public Errno Errno { get; }

    static string Describe(IReadOnlyList<NfTablesFailure> failures, Errno commitError) => failures.Count == 0
        ? $"nf_tables batch commit failed: {commitError}"
        : $"nf_tables batch refused at message {failures[0].Index} ({failures[0].Operation}): {failures[0].Errno}"
          + (failures.Count > 1 ? $" and {failures.Count - 1} more" : "");
}
