using System.Diagnostics.CodeAnalysis;

namespace Tabula.Machine.Init;

/// <summary>
/// What every Tabula PID 1 does around its own work: answer <c>version</c> (usable outside a VM), refuse to run as
/// anything but PID 1, and never exit — the kernel panics when init does. The program's work is an attempt that is
/// made again and again; what it throws is reported and followed by a pause.
/// </summary>
public static class InitHost
{
    /// <summary>
    /// Handles the arguments that do not start a machine: <c>version</c> prints "<paramref name="program"/>
    /// <paramref name="version"/> pid=N" and gives exit code 0; any run outside PID 1 is refused with exit code 2 and a
    /// hint naming <paramref name="image"/> (the image the program is /init of). Null: go on as PID 1.
    /// </summary>
    public static int? Preflight(string program, string version, string image, IReadOnlyList<string> args)
    {
        if (args is ["version"])
        {
            Console.WriteLine($"{program} {version} pid={Environment.ProcessId}");
            return 0;
        }
        if (Environment.ProcessId != 1)
        {
            Console.Error.WriteLine($"{program}: runs only as PID 1 (init) of {image}; try \"{program} version\"");
            return 2;
        }
        return null;
    }

    /// <summary>
    /// Runs <paramref name="attempt"/>(0), then after <paramref name="pause"/>(n) <paramref name="attempt"/>(n) for
    /// n = 1, 2, …, forever. Whatever an attempt throws goes to <paramref name="report"/> with its number; a throwing
    /// report is ignored (there is nowhere left to report to). Never returns.
    /// </summary>
    [DoesNotReturn]
    public static void Forever(Action<int> attempt, Action<int, Exception> report, Func<int, TimeSpan> pause, Action<TimeSpan>? sleep = null)
    {
        sleep ??= Thread.Sleep;
        for (int n = 0; ; n = n == int.MaxValue ? 1 : n + 1)
        {
            if (n > 0)
                sleep(pause(n));
            try
            {
                attempt(n);
            }
            catch (Exception e)
            {
                try { report(n, e); }
                catch (Exception) { /* the console itself failed: keep going */ }
            }
        }
    }
}
