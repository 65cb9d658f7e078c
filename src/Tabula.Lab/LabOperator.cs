using System.Diagnostics;
using System.Net.Http.Json;
using Tabula.Fleet.Api;
using static Tabula.Lab.LabRunner;

namespace Tabula.Lab;

/// <summary>What `lab upgrade` and `lab attack` are asked to do: which lab, how to run this CLI, where progress goes.</summary>
/// <param name="Directory">The lab directory of a lab that `up` brought up.</param>
/// <param name="Tabula">How to run this very CLI (the staff commands are its verbs).</param>
/// <param name="Progress">Receives one line per step and while waiting.</param>
public sealed record LabActionOptions(string Directory, IReadOnlyList<string> Tabula, Action<string> Progress)
{
    /// <summary>How long one machine may take to reach one stage (TCG on shared cores is slow).</summary>
    public TimeSpan StageTimeout { get; init; } = TimeSpan.FromMinutes(12);

    /// <summary>How long a drained relay keeps serving before it reboots (`lab upgrade`: the rollout's drain) or is powered off
    /// (`lab attack`); clients move to other relays meanwhile.</summary>
    public TimeSpan DrainGrace { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>`lab upgrade`: the rollout's canaries (rolled first, all at once).</summary>
    public int Canary { get; init; } = 1;

    /// <summary>`lab upgrade`: machines per batch after the canaries.</summary>
    public int Batch { get; init; } = 1;
}

/// <summary>A relay after a power-on: what stboot verified and when, and what the agent enrolled as.</summary>
internal sealed record RelayBoot(LabMachine Machine, string VerifiedSha256, TimeSpan KexecAt, TimeSpan EnrolledAt, string MachineId,
    string Fingerprint, string EnrolledState);

/// <summary>
/// Staff's hands on a lab that `up` brought up, shared by `upgrade` and `attack`: reads DIR/state.json, runs the staff
/// CLI verbs (printed as an operator types them), powers relay machines off and on (QEMU stopped and started again with
/// the same stboot image: the RAM, and with it the relay's WireGuard key, is gone), follows a boot to enrollment, and
/// points the customer's WireGuard client at a relay's new key. Every process change is saved to the state at once.
/// </summary>
internal sealed class LabOperator : IDisposable
{
    readonly LabActionOptions options;
    readonly string token;

    public LabOperator(LabActionOptions options, string verb)
    {
        this.options = options;
        Directory = Path.GetFullPath(options.Directory).TrimEnd('/');
        State = LabState.Load(Directory) ?? throw new LabException($"no lab is up in {Directory}: run `tabula lab up` first");
        if (State.Status != "up" || State.Summary is not { } summary)
            throw new LabException($"the lab in {Directory} did not finish coming up; run `tabula lab up` again before `lab {verb}`");
        Summary = summary;
        foreach (var relay in Summary.Relays)
            if (QemuProcess(relay.Name) is not { } qemu || HostProcess.CommandLine(qemu.Pid) is null)
                throw new LabException($"{relay.Name} is not running (its QEMU is gone); run `tabula lab up` again");
        Kernel = LabKernel.Find() ?? throw new LabException("no guest kernel in /boot (package linux-image-amd64)");
        Server = Summary.DashboardUrl[..^"/dashboard".Length];
        if (!CanConnectLoopback(new Uri(Server).Port))
            throw new LabException($"the lab's dashboard forwarder ({Server}) is gone; run `tabula lab up` again");
        token = File.ReadAllText(Summary.StaffTokenFile).Trim();
        Staff = Client(Server, Summary.FleetCa, token, "Bearer");
    }

    public void Dispose() => Staff.Dispose();

    public string Directory { get; }
    public LabState State { get; }
    public LabSummary Summary { get; private set; }
    public LabKernel Kernel { get; }

    /// <summary>The kernel a new relay package carries: <see cref="Kernel"/>, under Secure Boot signed anew with the lab's db key.</summary>
    public LabKernel PackageKernel() => LabFirmware.PackageKernel(Kernel, Directory, State.SecureBoot);
    public string Namespace => State.Namespace;

    /// <summary>The customer namespace the lab's WireGuard client runs in.</summary>
    public string ClientNamespace => Summary.ClientNamespace ?? LabClient.Namespace(Namespace);
    public TimeSpan StageTimeout => options.StageTimeout;
    public TimeSpan DrainGrace => options.DrainGrace;

    /// <summary>How to run this very CLI.</summary>
    public IReadOnlyList<string> Tabula => options.Tabula;

    /// <summary>The controller through the loopback forwarder.</summary>
    public string Server { get; }

    /// <summary>The staff API, trusting only the lab's fleet CA.</summary>
    public HttpClient Staff { get; }

    public void Say(string line) => options.Progress(line);

    /// <summary>Runs `tabula fleet …` as staff, printing the command as an operator types it and its answer.</summary>
    public string FleetCli(params string[] command) =>
        StaffCli(Say, options.Tabula, token, Summary.StaffTokenFile, [.. command, "--server", Server, "--ca", Summary.FleetCa]);

    /// <summary>Runs a `tabula …` verb inside the lab namespace (where the provisioning server listens), printed as typed.</summary>
    public string TabulaInNamespace(params string[] command)
    {
        Say($"      $ ip netns exec {Namespace} tabula {string.Join(' ', command.Select(Quote))}");
        var clock = Stopwatch.StartNew();
        string output = HostProcess.Run(LabNetwork.Exec(Namespace, [.. options.Tabula, .. command])).Trim();
        foreach (string line in output.Split('\n'))
            Say("        " + line);
        Say($"        ({clock.ElapsedMilliseconds} ms)");
        return output;
    }

    public async Task<MachineView> MachineAsync(string id, CancellationToken ct) =>
        await Staff.GetFromJsonAsync($"/api/v1/machines/{id}", FleetJson.Default.MachineView, ct)
        ?? throw new LabException($"the controller does not know machine {id}");

    /// <summary>The relay named <paramref name="name"/> and its index (its tap, MAC and address follow from it).</summary>
    public (RelaySummary Relay, int Index) Relay(string name)
    {
        for (int i = 0; i < Summary.Relays.Count; i++)
            if (Summary.Relays[i].Name == name)
                return (Summary.Relays[i], i);
        throw new LabException($"no relay \"{name}\" in this lab (it has {string.Join(", ", Summary.Relays.Select(r => r.Name))})");
    }

    LabProcess? QemuProcess(string name) => State.Processes.LastOrDefault(p => p.Name == "qemu " + name);

    /// <summary>Pulls the plug: QEMU is stopped, and the relay's RAM (its WireGuard key, its peers) is gone with it; so is its
    /// swtpm process (the TPM's state, the chip, stays for the next power-on).</summary>
    public void PowerOff(string name)
    {
        if (QemuProcess(name) is { } qemu)
        {
            HostProcess.Stop(qemu.Pid, qemu.Marker, TimeSpan.FromSeconds(5));
            State.Processes.Remove(qemu);
            State.Save();
        }
        foreach (var swtpm in State.Processes.Where(p => p.Name == LabTpm.ProcessName(name)).ToList())
        {
            HostProcess.Stop(swtpm.Pid, swtpm.Marker, TimeSpan.FromSeconds(5));   // with --terminate it already ended with QEMU
            State.Processes.Remove(swtpm);
            State.Save();
        }
    }

    /// <summary>Powers relay <paramref name="index"/> on again with its own stboot image (same trust policy, host configuration), or
    /// under UEFI its ESP and variable store (the firmware the lab came up with).</summary>
    public LabMachine PowerOn(int index)
    {
        string name = Summary.Relays[index].Name;
        string machineDir = Path.Combine(Directory, "machines", name);
        var tpm = LabTpm.Has(machineDir) ? LabTpm.PowerOn(State, name, machineDir) : null;
        var machine = LabMachine.Start(name, Namespace, machineDir, Kernel, LabNetwork.Tap(index), LabNetwork.RelayMac(index), tpm, State.Firmware, State.SecureBoot);
        State.Add(new LabProcess("qemu " + name, machine.Pid, machine.ConsoleLog));
        return machine;
    }

    /// <summary>Follows relay <paramref name="index"/>'s running QEMU from its console's current end (<see cref="LabMachine.Attach"/>).</summary>
    public LabMachine Attach(int index)
    {
        string name = Summary.Relays[index].Name;
        var qemu = QemuProcess(name) ?? throw new LabException($"{name} is not running (its QEMU is gone); run `tabula lab up` again");
        return LabMachine.Attach(name, Path.Combine(Directory, "machines", name), qemu.Pid);
    }

    /// <summary>The controller's latest rollout (GET /api/v1/rollouts/latest, what `tabula fleet rollout status --json` prints).</summary>
    public async Task<RolloutView> RolloutAsync(CancellationToken ct) =>
        await Staff.GetFromJsonAsync("/api/v1/rollouts/latest", FleetJson.Default.RolloutView, ct)
        ?? throw new LabException("the controller answered no rollout");

    /// <summary>Follows a power-on (or, from <paramref name="after"/> on, a reboot) through stboot to the agent's enrollment
    /// (<see cref="LabRunner.WaitBootAsync"/>).</summary>
    public Task<RelayBoot> WaitBootAsync(LabMachine machine, CancellationToken ct, TimeSpan after = default) =>
        LabRunner.WaitBootAsync(machine, Say, StageTimeout, ct, after);

    /// <summary>Reads relay <paramref name="index"/>'s current WireGuard key from the controller, points the customer's client at it
    /// and pings through it.</summary>
    public async Task<(MachineView View, bool Handshake, bool Ping)> ReconnectAsync(int index, string machineId, CancellationToken ct)
    {
        var view = await MachineAsync(machineId, ct);
        var (handshake, ping) = Reconnect(index, view);
        return (view, handshake, ping);
    }

    /// <summary>
    /// Points the customer's client for relay <paramref name="index"/> at the relay's current WireGuard key (what a client
    /// app does when the relay list changes) and pings through the tunnel.
    /// </summary>
    public (bool Handshake, bool Ping) Reconnect(int index, MachineView view)
    {
        string iface = Summary.Relays[index].WireguardInterface;
        LabClient.Repoint(ClientNamespace, iface, index, view.WireguardPublicKey);
        return LabClient.PingThrough(ClientNamespace, iface, view.WireguardPublicKey);
    }

    /// <summary>
    /// After a relay re-enrolled: staff deploy it back into the relay list (printed), the agent serves, the customer's
    /// client moves to its new WireGuard key and pings through it; the relay's entry in the summary is updated.
    /// </summary>
    public async Task<(MachineView View, bool Handshake, bool Ping, TimeSpan ServingAt)> RedeployAsync(int index, RelayBoot boot, string reason,
        CancellationToken ct)
    {
        var relay = Summary.Relays[index];
        FleetCli("fleet", "machines", "deploy", relay.MachineId, "--reason", reason);
        var serving = await WaitWithProgressAsync(boot.Machine, ConsoleMarker.Relay("stage:serve"), "the relay to serve", Say, StageTimeout, ct);
        var view = await MachineAsync(relay.MachineId, ct);
        var (handshake, ping) = Reconnect(index, view);
        Record(index, boot, view, handshake, ping, TimeSpan.Zero);
        return (view, handshake, ping, serving.At);
    }

    /// <summary>Saves relay <paramref name="index"/>'s new boot (from <paramref name="after"/> on its console) into the summary: its
    /// new fingerprint, state, handshake and ping, stboot's timeline, and kexec and enrollment measured from the power-on or reboot.</summary>
    public void Record(int index, RelayBoot boot, MachineView view, bool handshake, bool ping, TimeSpan after)
    {
        string name = Summary.Relays[index].Name;
        Save(Summary with
        {
            Relays = [.. Summary.Relays.Select(r => r.Name != name ? r : r with
            {
                Fingerprint = boot.Fingerprint, State = view.State, Handshake = handshake, Ping = ping, ConsoleLog = boot.Machine.ConsoleLog,
                Attestation = null,   // it was about an earlier boot
                Stboot = boot.Machine.StbootTimeline(after),
                Timeline = r.Timeline with { KexecAt = Round(boot.KexecAt - after), EnrolledAt = Round(boot.EnrolledAt - after) },
            })],
        });
    }

    /// <summary>One ping through each other relay's tunnel: is the rest of the fleet still serving?</summary>
    public IReadOnlyList<(string Name, bool Ping)> PingOthers(string except) =>
        [.. Summary.Relays.Where(r => r.Name != except).Select(r => (r.Name, LabClient.PingOnce(ClientNamespace, r.WireguardInterface)))];

    /// <summary>Saves a changed summary (new package, new relay keys and timelines) into DIR/state.json.</summary>
    public void Save(LabSummary summary)
    {
        Summary = summary;
        State.Summary = summary;
        State.Save();
    }
}
