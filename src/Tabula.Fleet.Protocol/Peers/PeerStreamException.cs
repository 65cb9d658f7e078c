namespace Tabula.Fleet.Protocol;

/// <summary>Why the peer stream broke its contract. The agent resubscribes on each; see docs/fleet.md "Peer stream".</summary>
public enum PeerStreamError
{
    /// <summary>A line longer than <see cref="PeerLine.MaxBytes"/>, or no newline within it.</summary>
    LineTooLong,
    /// <summary>A line that is not one of the line types with its fields of the right type and form.</summary>
    MalformedLine,
    /// <summary>The stream ended inside a line or inside a snapshot.</summary>
    Truncated,
    /// <summary>Nothing arrived within the idle time (the controller heartbeats every 15 s).</summary>
    Stalled,
    /// <summary>A well-formed line where the protocol does not allow it (a delta before the snapshot, …).</summary>
    Unexpected,
    /// <summary>A snapshot's end does not match its beginning (revision or peer count).</summary>
    SnapshotMismatch,
    /// <summary>The set after a snapshot or delta does not hash to the controller's value.</summary>
    HashMismatch,
    /// <summary>A delta's revision is not the last applied plus one.</summary>
    RevisionGap,
}

/// <summary>
/// The peer stream broke its contract. The message is <c>"{code}: {detail}"</c> (code as in <see cref="Code"/>) and
/// never holds key or address text.
/// </summary>
public sealed class PeerStreamException(PeerStreamError reason, string detail) : Exception($"{CodeOf(reason)}: {detail}")
{
    /// <summary>What went wrong.</summary>
    public PeerStreamError Reason { get; } = reason;

    /// <summary>The reason as a snake_case word for logs ("malformed_line").</summary>
    public string Code => CodeOf(Reason);

    static string CodeOf(PeerStreamError reason) => reason switch
    {
        PeerStreamError.LineTooLong => "line_too_long",
        PeerStreamError.MalformedLine => "malformed_line",
        PeerStreamError.Truncated => "truncated",
        PeerStreamError.Stalled => "stalled",
        PeerStreamError.Unexpected => "unexpected",
        PeerStreamError.SnapshotMismatch => "snapshot_mismatch",
        PeerStreamError.HashMismatch => "hash_mismatch",
        PeerStreamError.RevisionGap => "revision_gap",
        _ => "error",
    };
}
