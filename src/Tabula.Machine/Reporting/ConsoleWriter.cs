namespace Tabula.Machine.Reporting;

/// <summary>
/// Writes <see cref="ConsoleLine"/>s for one program: one line per event, flushed at once (the serial console is the
/// operator's and the tests' view), with the time since the writer was made. Optionally keeps the newest
/// <c>ringCapacity</c> lines in RAM (the relay's health report reads its last error there; nothing goes to a file).
/// The programs' own log classes are the one place to audit that no line carries a secret or a customer's data.
/// </summary>
public sealed class ConsoleWriter(string program, TextWriter console, TimeProvider time, int ringCapacity = 0)
{
    readonly long start = time.GetTimestamp();
    readonly Queue<string> ring = new(ringCapacity);
    readonly Lock gate = new();

    /// <summary>The program name every line starts with.</summary>
    public string Program => program;

    /// <summary>Time since the program started.</summary>
    public TimeSpan Elapsed => time.GetElapsedTime(start);

    /// <summary>Prints one event; line breaks in <paramref name="detail"/> become " | " so an event stays one line.</summary>
    public ConsoleLine Write(string key, string detail)
    {
        var at = TimeSpan.FromMilliseconds((long)Elapsed.TotalMilliseconds);   // what the line shows
        var line = new ConsoleLine(program, key, at, detail.ReplaceLineEndings(" | "));
        string text = line.ToString();
        lock (gate)
        {
            if (ringCapacity > 0)
            {
                if (ring.Count == ringCapacity) ring.Dequeue();
                ring.Enqueue(text);
            }
            console.WriteLine(text);
            console.Flush();
        }
        return line;
    }

    /// <summary>The lines still held in RAM, oldest first (empty without a ring).</summary>
    public IReadOnlyList<string> Recent()
    {
        lock (gate) return [.. ring];
    }
}
