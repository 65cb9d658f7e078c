using Tabula.Machine.Init;

namespace Tabula.Relay.Settings;

/// <summary>Why the relay's configuration could not be read.</summary>
public enum SettingsError
{
    /// <summary>A file the relay needs is not there (the image or stboot's hand-over is incomplete).</summary>
    Missing,
    /// <summary>A file is over its size limit.</summary>
    TooLarge,
    /// <summary>A file is not valid JSON or PEM, or a field has the wrong type or form.</summary>
    Malformed,
    /// <summary>A field is valid but unusable (a non-https fleet URL, DHCP where only static is supported, …).</summary>
    Unsupported,
}

/// <summary>A configuration problem, with the file and field it concerns; never contains a secret's value.</summary>
public sealed class RelaySettingsException(SettingsError reason, string file, string detail)
    : StageException<SettingsError>("settings", reason, $"{file}: {detail}")
{
    public string File { get; } = file;
}
