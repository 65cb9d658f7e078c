namespace Tabula.Machine.Init;

/// <summary>
/// A stage of a PID-1 program failed for a reason that program names in its own enum (<see cref="StageException{TReason}"/>).
/// The runner reports <see cref="ReasonName"/> on the console; code that reacts to a failure matches the typed
/// <c>Reason</c>, never a string. The message is the detail alone: the console line names stage and reason itself.
/// </summary>
public abstract class StageException(string stage, string detail, Exception? inner)
    : Exception(detail, inner)
{
    /// <summary>The stage that failed (its console name).</summary>
    public string Stage { get; } = stage;

    /// <summary>One line of detail; never a secret or a customer's data.</summary>
    public string Detail { get; } = detail;

    /// <summary>The reason as printed on the console (the enum member's name).</summary>
    public abstract string ReasonName { get; }
}

/// <summary>A stage failure whose reason is one member of the program's reason enum.</summary>
public class StageException<TReason>(string stage, TReason reason, string detail, Exception? inner = null)
    : StageException(stage, detail, inner) where TReason : struct, Enum
{
    /// <summary>Why the stage failed.</summary>
    public TReason Reason { get; } = reason;

    /// <inheritdoc />
    public override string ReasonName => Reason.ToString();
}
