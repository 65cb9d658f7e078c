using System.CommandLine;
using System.Globalization;
using System.Net;
using System.Text.Json;
using Tabula.Lab;

namespace Tabula.Cli.Commands;

/// <summary>
/// `tabula lab up|upgrade|attack|down`: the whole disk-less fleet on one machine (Tabula.Lab; docs/lab.md). `lab forward` is the
/// loopback forwarder `up` starts in the background for the dashboard; it is not meant to be typed.
/// </summary>
internal static class LabCommand
{
    public static Command Create() => new("lab",
        "The whole fleet on this machine: signing keys, a signed relay package, the provisioning server and the fleet controller, " +
        "relay machines in QEMU (software emulation) that boot it with stboot, a customer's WireGuard client pinging through each relay.")
    {
        Up(), Upgrade(), Attack(), Down(), Forward(), Echo(),
    };

    static Option<string> DirectoryOption() => new("--dir")
    {
        Description = $"Lab directory: state, keys, packages, images, logs (default: $TABULA_LAB_DIR or {LabRunner.DefaultDirectory})",
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable("TABULA_LAB_DIR") is { Length: > 0 } d ? d : LabRunner.DefaultDirectory,
    };

    static Command Up()
    {
        var relays = new Option<int>("--relays") { Description = "Relay machines to boot (1 GiB of RAM and one busy core each: 1 or 2 on a small machine)", DefaultValueFactory = _ => 2 };
        var json = new Option<bool>("--json") { Description = "Print the summary as JSON on stdout (progress goes to stderr)" };
        var dir = DirectoryOption();
        var cmdline = new Option<string>("--relay-cmdline")
        {
            Description = "Kernel command line of the relay package (default: the image builder's)",
            DefaultValueFactory = _ => Images.Relay.RelayImageInputs.DefaultCmdline,
        };
        var tpm = new Option<string>("--tpm")
        {
            Description = "swtpm: each relay gets its own swtpm as TPM 2.0 (EK certificate by the lab's manufacturer CA), stboot requires measured " +
                          "boot, the controller requires attestation, and the lab's client runs `relay attest` through each tunnel; none: no TPM, " +
                          "measured boot and attestation optional",
            DefaultValueFactory = _ => "swtpm",
        };
        tpm.AcceptOnlyFromAmong("swtpm", "none");
        var firmware = new Option<string>("--firmware")
        {
            Description = "How the relays boot stboot: bios (SeaBIOS, -kernel/-initrd, host configuration in the image) or uefi (OVMF boots the stboot UKI " +
                          "from an ESP; each relay's host configuration in its STHostConfig EFI variable)",
            DefaultValueFactory = _ => LabFirmware.Bios,
        };
        firmware.AcceptOnlyFromAmong(LabFirmware.Bios, LabFirmware.Uefi);
        var secureBoot = new Option<bool>("--secure-boot")
        {
            Description = "UEFI Secure Boot with the lab's own PK, KEK and db (implies --firmware uefi): the UKI and the relay package's kernel signed with db",
        };
        var command = new Command("up",
            "Bring the lab up (a lab already up in the directory is taken down first). Needs root, qemu-system-x86, a linux-image kernel, " +
            "wireguard-go and wireguard-tools, swtpm and swtpm-tools (scripts/setup installs them); with uefi also ovmf and systemd-boot-efi, " +
            "with --secure-boot sbsigntool.")
        {
            relays, json, dir, cmdline, tpm, firmware, secureBoot,
        };
        command.SetAction((result, ct) => Guard(result.GetValue(dir)!, async () =>
        {
            bool asJson = result.GetValue(json);
            bool secure = result.GetValue(secureBoot);
            var options = new LabOptions(result.GetValue(dir)!, result.GetValue(relays), Self(), Progress(asJson))
            {
                RelayCmdline = result.GetValue(cmdline)!, Tpm = result.GetValue(tpm) != "none",
                Firmware = secure ? LabFirmware.Uefi : result.GetValue(firmware)!,
                SecureBoot = secure,
            };
            var summary = await LabRunner.UpAsync(options, ct);
            if (asJson)
                Console.WriteLine(JsonSerializer.Serialize(summary, LabJson.Default.LabSummary));
            else
                Print(summary);
            return summary.Relays.All(r => r.Handshake && r.Ping && (summary.TpmManufacturerCa is null || r.Attestation?.Verified == true))
                ? ExitCode.Ok : ExitCode.Rejected;
        }));
        return command;
    }

    static void Print(LabSummary summary)
    {
        Console.WriteLine();
        Console.WriteLine($"lab is up in {summary.TookSeconds:0}s ({string.Join(", ", summary.Steps.Select(s => $"{s.Name} {s.Seconds:0.#}s"))})");
        Console.WriteLine($"  package   sha256 {summary.PackageSha256} ({summary.PackageBytes / 1e6:0.0} MB, signatures: {summary.PackageSigners})");
        Console.WriteLine($"  boot      measured boot {summary.MeasuredBoot}, attestation {summary.AttestationPolicy}" +
                          (summary.TpmManufacturerCa is null ? " (no TPMs)" : " (each relay: swtpm TPM 2.0, EK certificate by the lab's manufacturer CA)"));
        if (summary.Firmware is { } firmware)
            Console.WriteLine($"  firmware  {firmware.Type}{(firmware.SecureBoot ? " with Secure Boot (keys " + firmware.Keys + ")" : "")}" +
                              (firmware.Uki is null ? "" : $"; stboot UKI {firmware.Uki}; host configuration in {firmware.HostConfig}"));
        Console.WriteLine($"  dashboard {summary.DashboardUrl}  login {summary.StaffUsername} / {summary.StaffPassword}  (CA {summary.FleetCa})");
        Console.WriteLine($"  staff CLI TABULA_FLEET_TOKEN=$(cat {summary.StaffTokenFile}) tabula fleet machines list --server {summary.DashboardUrl[..^"/dashboard".Length]} --ca {summary.FleetCa}");
        foreach (var relay in summary.Relays)
        {
            Console.WriteLine($"  {relay.Name}   {relay.Address}  machine {relay.MachineId}  fingerprint {relay.Fingerprint}  {relay.State}" +
                              $"  handshake {(relay.Handshake ? "done" : "NONE")}  ping {(relay.Ping ? "ok" : "FAILED")}");
            Console.WriteLine($"    stboot (its own clock)  {LabRunner.Timeline(relay.Stboot)}");
            if (relay.Platform is { } platform)
                Console.WriteLine($"    stboot saw              firmware={platform.Firmware}{(platform.SecureBoot is { } sb ? $" secure_boot={sb}" : "")} lockdown={platform.Lockdown} host_config={platform.HostConfig}");
            Console.WriteLine($"    lab (wall clock)        kexec at {relay.Timeline.KexecAt:0.0}s, enrolled at {relay.Timeline.EnrolledAt:0.0}s after power-on; " +
                              $"serving {relay.Timeline.Deploy:0.0}s after deploy; first ping through the tunnel {relay.Timeline.FirstHandshake:0.0}s after the device was added");
            Console.WriteLine($"    public {relay.PublicIpv4} {relay.PublicIpv6}; GET /ip through it: " +
                              (relay.EgressIpv4 is null && relay.EgressIpv6 is null ? "no egress" : $"the echo host saw {relay.EgressIpv4 ?? "-"} and {relay.EgressIpv6 ?? "-"}"));
            if (relay.Attestation is { } attestation)
                Console.WriteLine($"    relay attest            " + (attestation.Verified
                    ? $"verified through the tunnel: package {attestation.PackageSha256}, release {attestation.Release}, {attestation.Seconds:0.00}s " +
                      $"(the client connected in {relay.Timeline.Connect:0.00}s)"
                    : $"NOT verified: failed at {attestation.FailedStep}: {attestation.Detail}"));
            Console.WriteLine($"    console {relay.ConsoleLog}; client: ip netns exec {summary.ClientNamespace} wg show {relay.WireguardInterface}");
        }
        if (summary.Internet is { } internet)
            Console.WriteLine($"  internet  echo http://{internet.Echo.Name}/ip ({internet.Echo.Ipv4}, {internet.Echo.Ipv6}); customers: " +
                              $"{string.Join(", ", internet.CustomerNamespaces)} (ip netns exec NS …)");
        Console.WriteLine($"  take it down with: tabula lab down{(summary.Directory == LabRunner.DefaultDirectory ? "" : " --dir " + summary.Directory)}");
    }

    static Command Upgrade()
    {
        var json = new Option<bool>("--json") { Description = "Print the summary as JSON on stdout (progress goes to stderr)" };
        var drain = new Option<int>("--drain-seconds")
        {
            Description = "How long a drained relay keeps serving before it reboots (the rollout's drain; clients move to other relays meanwhile)",
            DefaultValueFactory = _ => 5,
        };
        var canary = new Option<int>("--canary") { Description = "The rollout's canaries, rolled first", DefaultValueFactory = _ => 1 };
        var batch = new Option<int>("--batch") { Description = "Relays per batch after the canaries", DefaultValueFactory = _ => 1 };
        var dir = DirectoryOption();
        var command = new Command("upgrade",
            "Build the next release of the relay package, sign it (signer2 + signer3), allow it in the fleet, publish it to `stable`, and have the " +
            "controller roll it (`tabula fleet rollout start`: canary, then batches): each relay takes a signed reboot command, drains, reboots " +
            "inside its running QEMU into stboot, which verifies and boots the new package; the agent enrolls again and serves. " +
            "Prints each relay's time out of service.") { json, drain, canary, batch, dir };
        command.SetAction((result, ct) => Guard(result.GetValue(dir), async () =>
        {
            bool asJson = result.GetValue(json);
            var summary = await LabRunner.UpgradeAsync(new LabActionOptions(result.GetValue(dir)!, Self(), Progress(asJson))
            {
                DrainGrace = TimeSpan.FromSeconds(Math.Clamp(result.GetValue(drain), 0, 3600)),
                Canary = Math.Clamp(result.GetValue(canary), 0, 8),
                Batch = Math.Clamp(result.GetValue(batch), 1, 8),
            }, ct);
            if (asJson)
            {
                Console.WriteLine(JsonSerializer.Serialize(summary, LabJson.Default.LabUpgradeSummary));
            }
            else
            {
                Console.WriteLine();
                Console.WriteLine($"upgraded to r{summary.Release} in {summary.TookSeconds:0}s (rollout {summary.RolloutId} {summary.RolloutState} in " +
                                  $"{summary.RolloutSeconds:0}s): package sha256 {summary.PackageSha256} ({summary.PackageBytes / 1e6:0.0} MB, signatures: {summary.PackageSigners})");
                foreach (var relay in summary.Relays)
                    Console.WriteLine($"  {relay.Name}{(relay.Canary ? " (canary)" : "")}  out of service {relay.OutOfServiceSeconds:0.0}s (reboot → ping; " +
                                      $"served through {relay.DrainSeconds:0.0}s of drain before)  " +
                                      $"kexec at {relay.KexecAt:0.0}s, enrolled at {relay.EnrolledAt:0.0}s as {relay.EnrolledState}  " +
                                      $"handshake {(relay.Handshake ? "done" : "NONE")}  ping {(relay.Ping ? "ok" : "FAILED")}" +
                                      (relay.OthersServing ? "" : "  (another relay did NOT answer while it was down)") +
                                      (relay.Attestation is not { } attested ? ""
                                          : attested.Verified ? $"  attested r{attested.Release} ({attested.PackageSha256?[..16]}…) through the tunnel"
                                          : $"  attestation FAILED at {attested.FailedStep}"));
            }
            return summary.Relays.All(r => r.Handshake && r.Ping && r.BootedSha256 == summary.PackageSha256 && r.Attestation?.Verified != false)
                ? ExitCode.Ok : ExitCode.Rejected;
        }));
        return command;
    }

    static Command Attack()
    {
        var json = new Option<bool>("--json") { Description = "Print the summary as JSON on stdout (progress goes to stderr)" };
        var relay = new Option<string>("--relay") { Description = "The relay to attack", DefaultValueFactory = _ => "relay-1" };
        var only = new Option<string?>("--only")
        {
            Description = "Run only these rounds, comma-separated, in their usual order: " + string.Join(",", LabRunner.AttackNames) +
                          " (replayed-ticket needs an earlier round to record a ticket)",
        };
        var dir = DirectoryOption();
        var command = new Command("attack",
            "Show the refusals: with the provisioning server seized, one relay is power-cycled into a tampered package, a package signed by " +
            "one signer only, one signed under a rogue root, an older genuine release (rollback) and, with the controller's TLS key stolen, " +
            "a replayed boot ticket; it refuses each on its console for the round's reason and never kexecs. Then the genuine package " +
            "is served again and the relay boots it and serves.") { json, relay, only, dir };
        command.SetAction((result, ct) => Guard(result.GetValue(dir), async () =>
        {
            bool asJson = result.GetValue(json);
            var rounds = result.GetValue(only)?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            var summary = await LabRunner.AttackAsync(new LabActionOptions(result.GetValue(dir)!, Self(), Progress(asJson)), result.GetValue(relay)!, ct, rounds);
            if (asJson)
            {
                Console.WriteLine(JsonSerializer.Serialize(summary, LabJson.Default.LabAttackSummary));
            }
            else
            {
                Console.WriteLine();
                Console.WriteLine($"{summary.Relay} under attack ({summary.TookSeconds:0}s):");
                foreach (var attack in summary.Attacks)
                {
                    Console.WriteLine($"  {attack.Name,-17} {(attack.Refused ? "REFUSED" : "NOT REFUSED")}  {attack.Console}");
                    foreach (string line in attack.Signatures.Concat(attack.Freshness))
                        Console.WriteLine($"  {"",-17}         {line}");
                }
                Console.WriteLine($"  genuine package   {(summary.Recovered ? "booted, enrolled, serving again" : "NOT recovered")}");
            }
            return summary.Attacks.All(a => a.Refused) && summary.Recovered ? ExitCode.Ok : ExitCode.Rejected;
        }));
        return command;
    }

    static Action<string> Progress(bool asJson)
    {
        TextWriter progress = asJson ? Console.Error : Console.Out;
        return line =>
        {
            progress.WriteLine($"lab: {line}");
            progress.Flush();
        };
    }

    static Command Down()
    {
        var dir = DirectoryOption();
        var command = new Command("down", "Stop every process of the lab (QEMU, servers, wireguard-go, forwarder), delete its namespace and files. Safe to repeat.") { dir };
        command.SetAction(result => CliRun.Guard(() =>
        {
            var done = LabRunner.Down(result.GetValue(dir)!);
            if (done.Count == 0)
                Console.WriteLine($"lab: nothing to take down in {Path.GetFullPath(result.GetValue(dir)!)}");
            foreach (string line in done)
                Console.WriteLine($"lab: {line}");
            return ExitCode.Ok;
        }));
        return command;
    }

    static Command Forward()
    {
        var ns = new Option<string>("--netns") { Required = true, Description = "Namespace the target is in" };
        var listen = new Option<string>("--listen") { Required = true, Description = "Loopback IP:PORT to listen on" };
        var to = new Option<string>("--to") { Required = true, Description = "IP:PORT inside the namespace" };
        var command = new Command("forward", "Forward a loopback port into the lab namespace (started by `lab up`).") { ns, listen, to };
        command.Hidden = true;
        command.SetAction((result, ct) => Guard(null, async () =>
        {
            await LabForwarder.RunAsync(result.GetValue(ns)!, IPEndPoint.Parse(result.GetValue(listen)!), IPEndPoint.Parse(result.GetValue(to)!), ct);
            return ExitCode.Ok;
        }));
        return command;
    }

    static Command Echo()
    {
        var ns = new Option<string?>("--netns") { Description = "Namespace to listen in (default: this process's)" };
        var port = new Option<int>("--port") { Description = "TCP port (all addresses, IPv4 and IPv6)", DefaultValueFactory = _ => LabInternet.EchoHttpPort };
        var command = new Command("echo", "The lab internet's echo host: GET /ip, GET /bytes/N (started by `lab up`).") { ns, port };
        command.Hidden = true;
        command.SetAction((result, ct) => Guard(null, async () =>
        {
            await LabEcho.RunAsync(result.GetValue(ns), result.GetValue(port), line => { Console.WriteLine(line); Console.Out.Flush(); }, ct);
            return ExitCode.Ok;
        }));
        return command;
    }

    /// <summary>How to run this CLI again: the native executable, or dotnet + tabula.dll for the JIT build.</summary>
    static string[] Self()
    {
        string self = Environment.ProcessPath ?? throw new InvalidOperationException("cannot tell where the tabula executable is");
        return Path.GetFileName(self) == "dotnet" ? [self, Path.Combine(AppContext.BaseDirectory, "tabula.dll")] : [self];
    }

    /// <summary>A lab failure is one message (with the console tail when a machine failed); when `up` had already started
    /// something in <paramref name="directory"/>, it says how to remove it.</summary>
    static async Task<int> Guard(string? directory, Func<Task<int>> body)
    {
        try { return await CliRun.GuardAsync(body); }
        catch (LabException e)
        {
            Console.Error.WriteLine($"tabula: lab: {e.Message}");
            if (directory is not null && LabState.Load(Path.GetFullPath(directory)) is not null)
                Console.Error.WriteLine($"tabula: lab: what started is recorded in {Path.GetFullPath(directory)}; `tabula lab down` removes it");
            return ExitCode.BadInput;
        }
    }
}
