namespace Tabula.Lab;

/// <summary>
/// The lab could not go on: a prerequisite is missing, a host command failed, a machine did not reach a stage in
/// time. The message says what and where to look (a log path); the CLI prints it as one line.
/// </summary>
public sealed class LabException : Exception
{
    /// <summary>A failure with its explanation.</summary>
    public LabException(string message) : base(message) { }

    /// <summary>A failure with its explanation and cause.</summary>
    public LabException(string message, Exception inner) : base(message, inner) { }
}
