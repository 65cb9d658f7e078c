using System.Globalization;
using Tabula.Boot.Kexec;

namespace Tabula.Boot;

/// <summary>
/// Tunables of one boot, read from the kernel command line after "--" (upstream stboot's convention). None of them
/// weakens verification (threat checklist #16): they change timing and logging only.
/// <list type="bullet">
/// <item><c>--attempts=N</c>: tries per object (descriptor, archive) per URL; default 8 (upstream).</item>
/// <item><c>--attempt-wait=SECONDS</c>: pause between tries; default 1 (upstream).</item>
/// <item><c>--retry-wait=SECONDS</c>: pause after a failed round before fetching again; default 6 (upstream's Recover).</item>
/// <item><c>--rounds=N</c>: failed rounds before reboot(RESTART); default 8.</item>
/// <item><c>--kexec=auto|load|file</c>: auto (default) loads an x86-64 kernel (BIOS- or EFI-booted) with kexec_load and
/// stboot's own trampoline (no second and third hash of the verified package, Kexec/X86BootLoader.cs) and falls back to
/// kexec_file_load, which it uses from the start under Secure Boot or lockdown (Kexec/KexecChoice.cs); load tries
/// kexec_load only (a refusal fails the round: to see what a kernel says); file always uses kexec_file_load.</item>
/// </list>
/// </summary>
internal sealed record BootOptions
{
    public int AttemptsPerObject { get; init; } = 8;
    public TimeSpan AttemptWait { get; init; } = TimeSpan.FromSeconds(1);
    public TimeSpan RetryWait { get; init; } = TimeSpan.FromSeconds(6);
    public int MaxRounds { get; init; } = 8;
    public KexecMethod KexecMethod { get; init; }

    public static BootOptions Parse(IEnumerable<string> arguments)
    {
        var options = new BootOptions();
        foreach (string argument in arguments)
        {
            int eq = argument.IndexOf('=');
            string key = eq < 0 ? argument : argument[..eq];
            string value = eq < 0 ? "" : argument[(eq + 1)..];
            options = key switch
            {
                "--attempts" => options with { AttemptsPerObject = Number(key, value, 1, 100) },
                "--attempt-wait" => options with { AttemptWait = TimeSpan.FromSeconds(Number(key, value, 0, 600)) },
                "--retry-wait" => options with { RetryWait = TimeSpan.FromSeconds(Number(key, value, 0, 3600)) },
                "--rounds" => options with { MaxRounds = Number(key, value, 1, 1000) },
                "--kexec" => options with
                {
                    KexecMethod = value switch
                    {
                        "auto" => KexecMethod.Auto,
                        "load" => KexecMethod.Load,
                        "file" => KexecMethod.File,
                        _ => throw new FormatException($"--kexec is auto, load or file, got \"{value}\""),
                    },
                },
                _ => throw new FormatException($"unknown boot argument \"{argument}\""),
            };
        }
        return options;
    }

    static int Number(string key, string value, int min, int max) =>
        int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n >= min && n <= max
            ? n : throw new FormatException($"{key} wants a whole number from {min} to {max}, got \"{value}\"");
}
