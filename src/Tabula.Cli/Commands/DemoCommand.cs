using System.CommandLine;
using System.Diagnostics;
using Tabula.Packaging;

namespace Tabula.Cli.Commands;

/// <summary>
/// `tabula demo`: the whole signing workflow on embedded defaults, by running this very CLI's verbs
/// in-process: a root and three signers, a package, two signatures, verification at threshold 2,
/// and a tampered copy that is refused. (The QEMU lab will replace this as the main job.)
/// </summary>
internal static class DemoCommand
{
    public static Command Create()
    {
        var dir = new Option<string>("--dir") { Description = "Working folder (recreated)", DefaultValueFactory = _ => ".tabula/demo" };
        var kernel = new Option<string?>("--kernel") { Description = "Kernel to package (default: the newest /boot/vmlinuz-*, else a placeholder file)" };
        var command = new Command("demo", "Create keys, build, sign (2 of 3) and verify an OS package; then show a tampered one refused.") { dir, kernel };
        command.SetAction(result => CliRun.Guard(() => Run(result.GetValue(dir)!, result.GetValue(kernel))));
        return command;
    }

    private static int Run(string dir, string? kernelPath)
    {
        if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        Directory.CreateDirectory(Path.Combine(dir, "keys"));
        Directory.CreateDirectory(Path.Combine(dir, "input"));
        kernelPath ??= Directory.Exists("/boot") ? Directory.GetFiles("/boot", "vmlinuz-*").Order().LastOrDefault() : null;
        if (kernelPath is null)
        {
            kernelPath = Path.Combine(dir, "input", "vmlinuz-placeholder");
            File.WriteAllText(kernelPath, "placeholder kernel: no /boot/vmlinuz-* on this machine\n");
        }
        string initramfs = Path.Combine(dir, "input", "initramfs.cpio");
        File.WriteAllText(initramfs, "demo initramfs\n");
        string k = Path.Combine(dir, "keys"), pkg = Path.Combine(dir, "os");

        Step("1/6 signing root", ["keygen", "root", "--out", $"{k}/root"]);
        for (int i = 1; i <= 3; i++)
            Step($"2/6 signer {i} of 3", ["keygen", "leaf", "--root-key", $"{k}/root.key", "--root-cert", $"{k}/root.pem", "--out", $"{k}/signer{i}"]);
        Step($"3/6 package from {kernelPath}", ["ospkg", "create", "--kernel", kernelPath, "--initramfs", initramfs, "--label", "tabula demo", "--out", pkg]);
        Step("4/6 sign with signer 1", ["ospkg", "sign", "--key", $"{k}/signer1.key", "--cert", $"{k}/signer1.pem", $"{pkg}.json"]);
        Step("4/6 sign with signer 2", ["ospkg", "sign", "--key", $"{k}/signer2.key", "--cert", $"{k}/signer2.pem", $"{pkg}.json"]);
        int verified = Step("5/6 verify (threshold 2)", ["ospkg", "verify", "--descriptor", $"{pkg}.json", "--roots", $"{k}/root.pem", "--threshold", "2"], expect: ExitCode.Ok);

        string tampered = Path.Combine(dir, "os-tampered.zip");
        byte[] bytes = File.ReadAllBytes($"{pkg}.zip");
        bytes[bytes.Length / 2] ^= 0x01;
        File.WriteAllBytes(tampered, bytes);
        int refused = Step("6/6 verify a copy with one flipped bit", ["ospkg", "verify", "--descriptor", $"{pkg}.json", "--archive", tampered, "--roots", $"{k}/root.pem", "--threshold", "2"], expect: ExitCode.Rejected);
        Console.WriteLine();
        Console.WriteLine(verified == ExitCode.Ok && refused == ExitCode.Rejected
            ? $"demo complete: {pkg}.zip + {pkg}.json are signed 2-of-3 and verify; the tampered copy is refused."
            : "demo FAILED: see the steps above.");
        return verified == ExitCode.Ok && refused == ExitCode.Rejected ? ExitCode.Ok : ExitCode.Rejected;
    }

    private static int Step(string title, string[] args, int expect = ExitCode.Ok)
    {
        Console.WriteLine($"== {title}");
        Console.WriteLine($"$ tabula {string.Join(' ', args)}");
        var clock = Stopwatch.StartNew();
        int code = Process.GetCurrentProcess().MainModule?.FileName is { } self && !self.EndsWith("/dotnet", StringComparison.Ordinal)
            ? RunChild(self, args)
            : throw new InvalidOperationException("tabula demo must run from the tabula executable");
        Console.WriteLine($"   exit {code} in {clock.ElapsedMilliseconds} ms");
        if (code != expect) throw new InvalidOperationException($"step \"{title}\" exited {code}, expected {expect}");
        return code;
    }

    private static int RunChild(string self, string[] args)
    {
        var start = new ProcessStartInfo(self) { UseShellExecute = false };
        foreach (var a in args) start.ArgumentList.Add(a);
        using var child = Process.Start(start) ?? throw new InvalidOperationException("could not start tabula");
        child.WaitForExit();
        return child.ExitCode;
    }
}
