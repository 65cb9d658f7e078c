using System.Diagnostics;

namespace Tabula.Qemu.Tests;

public sealed class SerialConsoleTests : IDisposable
{
    readonly string dir = Directory.CreateTempSubdirectory("tabula-qemu-console-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    [Fact]
    public async Task Lines_are_stamped_when_first_seen_and_a_partial_line_waits_for_its_newline()
    {
        string path = Path.Combine(dir, "console.log");
        File.WriteAllText(path, "");
        var clock = Stopwatch.StartNew();
        using var console = new SerialConsole(path, clock);
        File.AppendAllText(path, "first\r\nsec");
        Assert.Equal(["first"], console.Lines.Select(l => l.Line));
        Assert.Null(console.Find(l => l.StartsWith("sec", StringComparison.Ordinal)));
        await Task.Delay(300);
        File.AppendAllText(path, "ond\nthird\n");
        var lines = console.Lines;
        Assert.Equal(["first", "second", "third"], lines.Select(l => l.Line));
        Assert.True(lines[1].At - lines[0].At >= TimeSpan.FromMilliseconds(250), $"{lines[0].At} {lines[1].At}");
        Assert.Equal("third", console.LastLine);
        Assert.Equal(2, console.FindAll(l => l.Contains('d')).Count);
    }

    [Fact]
    public async Task The_background_follower_stamps_lines_nobody_asked_for_yet()
    {
        string path = Path.Combine(dir, "console.log");
        File.WriteAllText(path, "");
        var clock = Stopwatch.StartNew();
        using var console = new SerialConsole(path, clock);
        File.AppendAllText(path, "early\n");
        var written = clock.Elapsed;
        await Task.Delay(1000);
        var line = Assert.Single(console.Lines);
        Assert.True(line.At - written < TimeSpan.FromMilliseconds(600), $"seen at {line.At}, written at {written}");
    }

    [Fact]
    public void A_truncated_file_is_read_from_its_start_and_a_missing_one_is_empty()
    {
        string path = Path.Combine(dir, "console.log");
        using var missing = new SerialConsole(Path.Combine(dir, "absent.log"), Stopwatch.StartNew());
        Assert.Empty(missing.Lines);
        File.WriteAllText(path, "before a restart\n");
        using var console = new SerialConsole(path, Stopwatch.StartNew());
        Assert.Single(console.Lines);
        File.WriteAllText(path, "new\n");
        Assert.Equal(["before a restart", "new"], console.Lines.Select(l => l.Line));
    }

    [Fact]
    public void A_console_without_newlines_stays_bounded()
    {
        string path = Path.Combine(dir, "console.log");
        File.WriteAllText(path, new string('x', 200_000));
        using var console = new SerialConsole(path, Stopwatch.StartNew());
        Assert.Equal(200_000, console.Lines.Sum(l => l.Line.Length));
        Assert.Contains("[", console.Tail(1), StringComparison.Ordinal);
    }
}
