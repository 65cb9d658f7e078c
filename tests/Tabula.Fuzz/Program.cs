using SharpFuzz;
using Tabula.Fuzz;

// Tabula.Fuzz TARGET              : run under afl-fuzz (scripts/fuzz): SharpFuzz feeds afl's inputs to the target.
// Tabula.Fuzz TARGET FILE|DIR...  : replay files through the target without afl; exit 1 when one is a finding.
// Tabula.Fuzz --list              : print the target names.
const int MaxInputBytes = 1 << 20;

if (args.Length == 0 || args[0] is "-h" or "--help")
{
    Console.Error.WriteLine("usage: Tabula.Fuzz TARGET [FILE|DIR ...] | --list");
    return 2;
}
if (args[0] == "--list")
{
    foreach (var name in Enum.GetNames<FuzzTarget>())
        Console.WriteLine(name);
    return 0;
}
if (!Enum.TryParse(args[0], ignoreCase: true, out FuzzTarget target) || !Enum.IsDefined(target))
{
    Console.Error.WriteLine($"unknown target {args[0]}; known: {string.Join(", ", Enum.GetNames<FuzzTarget>())}");
    return 2;
}
var fuzz = FuzzTargets.Of(target);

if (args.Length == 1)
{
    // Out of process: SharpFuzz runs the target in a child, so a stack overflow is reported as a crash, not lost.
    Fuzzer.OutOfProcess.Run(stream =>
    {
        var buffer = new MemoryStream();
        stream.CopyTo(buffer);
        if (buffer.Length <= MaxInputBytes)
            _ = fuzz(buffer.GetBuffer().AsSpan(0, (int)buffer.Length));
    });
    return 0;
}

int findings = 0, replayed = 0, accepted = 0;
foreach (string path in args[1..].SelectMany(p => Directory.Exists(p) ? Directory.EnumerateFiles(p).Order() : (IEnumerable<string>)[p]))
{
    replayed++;
    try { accepted += fuzz(File.ReadAllBytes(path)) ? 1 : 0; }
    catch (Exception e)
    {
        findings++;
        Console.Error.WriteLine($"{path}: {e}");
    }
}
Console.WriteLine($"{target}: {replayed} inputs, {accepted} accepted, {findings} findings");
return findings == 0 ? 0 : 1;
