using System.Diagnostics;
using System.Text;

namespace Tabula.Qemu;

/// <summary>
/// A serial console file that QEMU appends to, read line by line: each line is stamped with the time it was first
/// seen (the file is polled every 100 ms in the background, so a line that arrives while the caller does something
/// else still gets its real time). Partial lines wait for their newline.
/// </summary>
public sealed class SerialConsole : IDisposable
{
    /// <summary>How often the file is read.</summary>
    public static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(100);

    // A console that floods (a kernel panic loop, a chatty guest) must not fill the caller's memory.
    const int MaxLines = 200_000;
    const int MaxLineLength = 64 * 1024;

    readonly List<(TimeSpan At, string Line)> lines = [];
    readonly StringBuilder partial = new();
    readonly Stopwatch clock;
    readonly Timer follower;
    long offset;

    /// <summary>Follows <paramref name="path"/>; times are read from <paramref name="clock"/> (started with QEMU).</summary>
    public SerialConsole(string path, Stopwatch clock) : this(path, clock, 0) { }

    /// <summary>Follows <paramref name="path"/> from byte <paramref name="offset"/> on (lines before it are never seen).</summary>
    public SerialConsole(string path, Stopwatch clock, long offset)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        Path = path;
        this.clock = clock;
        this.offset = offset;
        follower = new Timer(_ => Poll(), null, TimeSpan.Zero, PollInterval);
    }

    /// <summary>The console file.</summary>
    public string Path { get; }

    /// <summary>Every complete line so far with its arrival time.</summary>
    public IReadOnlyList<(TimeSpan At, string Line)> Lines
    {
        get
        {
            lock (lines)
            {
                PollLocked();
                return [.. lines];
            }
        }
    }

    /// <summary>The first line so far that <paramref name="matches"/>, if any.</summary>
    public (TimeSpan At, string Line)? Find(Func<string, bool> matches) => Find(matches, TimeSpan.Zero);

    /// <summary>The first line so far that <paramref name="matches"/> and arrived at or after <paramref name="after"/> (a machine
    /// that reboots without QEMU exiting writes each boot's lines into the same file), if any.</summary>
    public (TimeSpan At, string Line)? Find(Func<string, bool> matches, TimeSpan after)
    {
        lock (lines)
        {
            PollLocked();
            foreach (var line in lines)
                if (line.At >= after && matches(line.Line))
                    return line;
            return null;
        }
    }

    /// <summary>Every line so far that <paramref name="matches"/>.</summary>
    public IReadOnlyList<(TimeSpan At, string Line)> FindAll(Func<string, bool> matches)
    {
        lock (lines)
        {
            PollLocked();
            return [.. lines.Where(l => matches(l.Line))];
        }
    }

    /// <summary>The last complete line, or "".</summary>
    public string LastLine
    {
        get
        {
            lock (lines)
            {
                PollLocked();
                return lines.Count == 0 ? "" : lines[^1].Line;
            }
        }
    }

    /// <summary>The last <paramref name="count"/> lines with their times, for failure messages.</summary>
    public string Tail(int count)
    {
        lock (lines)
        {
            PollLocked();
            return string.Join('\n', lines.TakeLast(count).Select(l => $"  [{l.At.TotalSeconds,7:0.000}s] {l.Line}"));
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        using var stopped = new ManualResetEvent(false);
        if (follower.Dispose(stopped))
            stopped.WaitOne(TimeSpan.FromSeconds(5));
        lock (lines)
            PollLocked();   // the last lines QEMU wrote before it exited
    }

    void Poll()
    {
        lock (lines)
            PollLocked();
    }

    void PollLocked()
    {
        FileStream file;
        try { file = new FileStream(Path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete); }
        catch (FileNotFoundException) { return; }
        catch (DirectoryNotFoundException) { return; }
        using (file)
        {
            if (file.Length < offset)
                offset = 0;   // truncated (QEMU opens the file with O_TRUNC when it starts)
            if (file.Length == offset)
                return;
            file.Position = offset;
            byte[] buffer = new byte[Math.Min(file.Length - offset, 1 << 20)];
            int read = file.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false);
            offset += read;
            partial.Append(Encoding.UTF8.GetString(buffer, 0, read));
        }
        string text = partial.ToString();
        int end = text.LastIndexOf('\n');
        if (end < 0 && text.Length > MaxLineLength)
            end = text.Length;   // no newline for this long: a line of its own, so the buffer stays bounded
        if (end < 0)
            return;
        foreach (string line in text[..end].Split('\n'))
            if (lines.Count < MaxLines)
                lines.Add((clock.Elapsed, line.TrimEnd('\r')));
        partial.Clear().Append(end + 1 < text.Length ? text[(end + 1)..] : "");
    }
}
