namespace Tabula.Boot;

/// <summary>One-line, greppable console output: "tabula-boot: KEY detail", with milliseconds since start.</summary>
internal static class BootConsole
{
    static readonly long Start = Environment.TickCount64;

    internal static void Line(string key, string detail) =>
        System.Console.Out.WriteLine($"tabula-boot: {key} t={Environment.TickCount64 - Start}ms {detail}");
}
