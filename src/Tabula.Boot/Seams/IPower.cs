namespace Tabula.Boot.Seams;

/// <summary>Restarting the machine after too many failed rounds (upstream's Recover).</summary>
internal interface IPower
{
    /// <summary>reboot(RESTART); returns only in a dry run.</summary>
    void Restart();
}

internal sealed class LinuxPower : IPower
{
    public void Restart()
    {
        Linux.Reboot.Sync();
        Linux.Reboot.Restart();
    }
}

internal sealed class DryRunPower : IPower
{
    public int Restarts { get; private set; }

    public void Restart() => Restarts++;
}
