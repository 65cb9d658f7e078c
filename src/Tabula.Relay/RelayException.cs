namespace Tabula.Relay;

/// <summary>A failure of one stage of the agent, with a short machine-readable reason for the console and tests.</summary>
public sealed class RelayException(string stage, string reason, string detail, Exception? inner = null)
    : Exception($"{stage}: {reason}: {detail}", inner)
{
    public string Stage { get; } = stage;
    public string Reason { get; } = reason;
    public string Detail { get; } = detail;
}
