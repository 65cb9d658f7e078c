using System.Net;
using System.Security.Cryptography;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Http;
using Tabula.Boot.Fetch;
using Tabula.Boot.States;
using Tabula.Fleet.Api;
using Tabula.Packaging;
using Tabula.Packaging.Crypto;
using Tabula.Testing;
using Tabula.Testing.Packages;

namespace Tabula.Boot.Tests;

/// <summary>
/// stboot's freshness stages (issue 16): the whole boot machine on the host (dry-run kexec, BootHarness), with stboot's
/// own pinned HTTPS handler talking to servers on 127.0.0.1 (<see cref="FreshnessServers"/>), a trust policy carrying
/// tabula_freshness and ticket_root.pem. Tickets come from the REAL fleet controller (POST /boot/v1/ticket of
/// <c>FleetServer</c>, in this process on SQLite, as the relay tests host it): it starts in well under a second, and a
/// ticket it signed is the only honest evidence that stboot and the controller agree on the format, the nonce, the
/// machine id and the floor. Attacks the controller would never sign are played by the mirror (a plain loopback Kestrel,
/// the seized provisioning server or an attacker with the controller's TLS key): it replays a ticket the controller issued
/// at an earlier boot, forwards the machine's nonce in a request of another machine, signs the real Packaging ticket
/// format with a key of its own, or answers bytes that are not a ticket. Each refusal is asserted on the console
/// (<c>freshness … refused reason=NAME</c> and the FAILED line) and never reaches kexec; rounds are bounded
/// (<see cref="BootOptions.MaxRounds"/>), and the machine's waits are recorded, not slept.
/// </summary>
public sealed class FreshnessTests : IClassFixture<FreshnessServers>, IDisposable
{
    const string Cmdline = "console=ttyS0 panic=-1 quiet -- fresh";

    readonly FreshnessServers servers;
    readonly List<BootHarness> machines = [];
    readonly BootHarness machine;
    readonly TestSigner root = SignedPackages.Root();
    readonly TestSigner[] signers;
    readonly byte[] identity = Ed25519.NewPrivateKey();
    readonly string id = Guid.NewGuid().ToString("N")[..12];
    readonly string machineClass;
    readonly byte[] kernel = RandomNumberGenerator.GetBytes(4000);
    readonly byte[] initramfs = RandomNumberGenerator.GetBytes(2001);

    public FreshnessTests(FreshnessServers servers)
    {
        this.servers = servers;
        machineClass = "relay-" + id[..8];
        signers = [SignedPackages.Leaf(root), SignedPackages.Leaf(root)];
        machine = NewMachine();
    }

    public void Dispose()
    {
        foreach (var m in machines)
            m.Dispose();
    }

    string MachineId => MachineIdentity.MachineId(Ed25519.PublicKeyOf(identity));
    string DescriptorPath => $"/t/{id}/os.json";
    Uri DescriptorUrl => new(servers.Mirror, DescriptorPath);
    Uri ControllerTicketUrl => new(servers.Controller, BootEndpoints.TicketPath);
    string SeizedTicketPath => $"/t/{id}/ticket";
    Uri SeizedTicketUrl => new(servers.Mirror, SeizedTicketPath);

    /// <summary>A machine (temporary root) with this test's identity key and pointer, stboot's real HTTPS handler.</summary>
    BootHarness NewMachine()
    {
        var m = new BootHarness
        {
            Options = new BootOptions { AttemptsPerObject = 2, MaxRounds = 2 },
            HttpFactory = roots =>
            {
                var tls = roots is null ? null : new PinnedTls(roots, TimeProvider.System);
                return (PinnedTls.CreateHandler(tls), tls);
            },
        };
        machines.Add(m);
        m.HostConfig($$$"""
            {"network_mode": "dhcp", "ospkg_pointer": "{{{DescriptorUrl}}}",
             "tabula_relay": {"identity_key": "{{{Convert.ToBase64String(identity)}}}", "enrollment_token": "tet_example"}}
            """);
        return m;
    }

    /// <summary>trust_policy.json with tabula_freshness (the class is this test's), ticket_root.pem = the controller's key.</summary>
    void Policy(BootHarness m, FreshnessMode mode, Uri ticketUrl, long minRelease = 0, byte[]? ticketRoot = null)
    {
        string directory = m.PathOf("/etc/trust_policy");
        if (Directory.Exists(directory))
            Directory.Delete(directory, recursive: true);
        new TrustPolicyFolder(new TrustPolicy(2, FetchMethod.Network) { Freshness = new FreshnessPolicy(mode, minRelease, machineClass, ticketUrl) },
            [root.Certificate], servers.Ca, null) { TicketRoot = ticketRoot ?? servers.TicketPublicKey }.Write(directory);
    }

    /// <summary>A package signed by two of this test's signers (threshold 2), its manifest naming release and class.</summary>
    byte[] Package(long release, string? packageClass = null, string cmdline = Cmdline) =>
        SignedPackages.Archive(kernel, initramfs, cmdline, release: release, machineClass: packageClass ?? machineClass);

    static string Hex(byte[] archive) => Convert.ToHexStringLower(SHA256.HashData(archive));

    /// <summary>The mirror serves <paramref name="archive"/> at this test's pointer.</summary>
    void Serve(byte[] archive)
    {
        servers.Files[DescriptorPath] = SignedPackages.Descriptor(archive, "os.zip", signers);
        servers.Files[$"/t/{id}/os.zip"] = archive;
    }

    /// <summary>The mirror answers this test's ticket URL with <paramref name="answer"/>.</summary>
    void Seized(Func<HttpContext, Task> answer) => servers.Answers[SeizedTicketPath] = answer;

    /// <summary>The seized ticket URL answers each request with a well-formed ticket for <paramref name="archive"/>, for the
    /// requesting machine and nonce, signed by a fresh key the machine does not pin.</summary>
    void SeizedWithTicketOfAnotherKey(byte[] archive)
    {
        byte[] attackerKey = Ed25519.NewPrivateKey();
        Seized(async context =>
        {
            var request = TicketRequest.Parse(await BodyAsync(context));
            var payload = new BootTicketPayload(request.MachineId, request.Nonce.ToArray(), Sha256Digest.Parse(Hex(archive), "digest"), 0,
                request.MachineClass, DateTimeOffset.UtcNow.ToUnixTimeSeconds());
            await WriteAsync(context, HttpStatusCode.OK, BootTicket.Sign(payload, attackerKey));
        });
    }

    static async Task<byte[]> BodyAsync(HttpContext context)
    {
        using var buffer = new MemoryStream();
        await context.Request.Body.CopyToAsync(buffer);
        return buffer.ToArray();
    }

    static async Task WriteAsync(HttpContext context, HttpStatusCode status, byte[] body)
    {
        context.Response.StatusCode = (int)status;
        context.Response.ContentType = "application/json";
        context.Response.ContentLength = body.Length;
        await context.Response.Body.WriteAsync(body);
    }

    string[] MirrorRequests => servers.Requests.Where(r => r.Contains($"/t/{id}/", StringComparison.Ordinal)).ToArray();

    /// <summary>The hand-over record in the cpio appended (4-aligned) after the signed initramfs.</summary>
    HandoverRecord Handover(BootHarness m)
    {
        byte[] staged = m.Kexec.Initramfs!;
        Assert.Equal(initramfs, staged[..initramfs.Length]);
        var entry = Assert.Single(NewcReader.Read(staged[((initramfs.Length + 3) / 4 * 4)..]), e => e.Name == InitramfsLayout.Handover);
        return HandoverRecord.Parse(entry.Data);
    }

    /// <summary>
    /// The refusal as the console shows it: a <c>freshness t=…ms refused reason=NAME</c> line and a FAILED line with
    /// <c>stage=STAGE reason=FreshnessRefused … detail="NAME: …"</c> per round; the boot ends in a restart without a kexec.
    /// </summary>
    static BootOutcome.Restarted AssertRefused(BootHarness m, BootOutcome outcome, string name, string stage = "freshness")
    {
        var restarted = Assert.IsType<BootOutcome.Restarted>(outcome);
        Assert.Equal(FailureReason.FreshnessRefused, restarted.Last.Reason);
        Assert.StartsWith(name + ": ", restarted.Last.Detail, StringComparison.Ordinal);
        Assert.Equal(m.Options.MaxRounds, restarted.FailedRounds);
        Assert.Equal(0, m.Kexec.Loads);
        Assert.False(m.Kexec.Executed);
        Assert.Equal(1, m.Power.Restarts);
        var refused = m.ConsoleLines.Where(l => Regex.IsMatch(l, $@"^tabula-boot: freshness t=\d+ms refused reason={Regex.Escape(name)} ")).ToList();
        Assert.Equal(m.Options.MaxRounds, refused.Count);
        var failed = m.ConsoleLines.Where(l => l.StartsWith("tabula-boot: FAILED ", StringComparison.Ordinal)).ToList();
        Assert.Equal(m.Options.MaxRounds, failed.Count);
        Assert.All(failed, l => Assert.Matches($@" stage={stage} reason=FreshnessRefused url=\S+ detail=""{Regex.Escape(name)}: ", l));
        Assert.DoesNotContain(m.ConsoleLines, l => l.Contains("tabula-boot: kexec ", StringComparison.Ordinal));
        Assert.DoesNotContain(m.ConsoleLines, l => l.Contains("tabula-boot: freshness ", StringComparison.Ordinal) && l.Contains(" fresh ", StringComparison.Ordinal));
        return restarted;
    }

    [Fact]
    public async Task Fresh_ticket_from_the_controller_boots_and_the_handover_carries_the_ticket_release_and_class()
    {
        byte[] archive = Package(3);
        Serve(archive);
        await servers.SetCurrentAsync(machineClass, Hex(archive), 3, floor: 2);
        Policy(machine, FreshnessMode.Required, ControllerTicketUrl, minRelease: 1);

        var outcome = Assert.IsType<BootOutcome.Kexecuted>(machine.Run());

        Assert.Equal(Hex(archive), outcome.OsPackageSha256);
        Assert.Equal(Cmdline, machine.Kexec.CommandLine);
        string[] lines = machine.ConsoleLines;
        int ticketLine = Array.FindIndex(lines, l => l.StartsWith("tabula-boot: stage:ticket ", StringComparison.Ordinal));
        int fetchLine = Array.FindIndex(lines, l => l.StartsWith("tabula-boot: stage:fetch ", StringComparison.Ordinal));
        Assert.InRange(ticketLine, 0, fetchLine - 1);                          // the ticket is asked for before the fetch
        Assert.Contains($"url={ControllerTicketUrl} machine={MachineId} bytes=", lines[ticketLine]);
        Assert.Contains(lines, l => Regex.IsMatch(l,
            $@"^tabula-boot: freshness t=\d+ms fresh release=3 class={machineClass} floor=2 issued_at=\d+ ospkg_sha256={Hex(archive)}$"));
        Assert.Contains(lines, l => l.StartsWith("tabula-boot: timeline ", StringComparison.Ordinal)
            && Regex.IsMatch(l, @" ticket=\d+ms ") && Regex.IsMatch(l, @" freshness=\d+ms "));
        Assert.DoesNotContain(lines, l => l.Contains("FAILED", StringComparison.Ordinal) || l.Contains("UNFRESH", StringComparison.Ordinal));

        var freshness = Assert.IsType<HandoverFreshness>(Handover(machine).Freshness);
        Assert.True(freshness.Fresh);
        Assert.Null(freshness.Reason);
        Assert.Equal((3L, machineClass), (freshness.Release, freshness.MachineClass));
        var ticket = BootTicket.Parse(freshness.Ticket);
        Assert.True(ticket.VerifySignature(servers.TicketPublicKey));
        Assert.Equal((MachineId, Hex(archive), 2L, machineClass), (ticket.Payload.MachineId, ticket.Payload.PackageSha256.Hex,
            ticket.Payload.MinRelease, ticket.Payload.MachineClass));
        Assert.Equal(1, await servers.TicketsIssuedAsync(MachineId));
    }

    [Fact]
    public async Task Ticket_replayed_from_an_earlier_boot_is_refused_as_ticket_nonce_and_never_kexeced()
    {
        byte[] archive = Package(2);
        Serve(archive);
        await servers.SetCurrentAsync(machineClass, Hex(archive), 2);
        byte[]? recorded = null;
        // The attacker holds the controller's TLS key (not its ticket key): at first it relays and records.
        Seized(async context =>
        {
            var (status, body) = await servers.AskControllerAsync(await BodyAsync(context));
            recorded = body;
            await WriteAsync(context, status, body);
        });
        Policy(machine, FreshnessMode.Required, SeizedTicketUrl);
        Assert.IsType<BootOutcome.Kexecuted>(machine.Run());                   // the earlier boot, fresh
        Assert.True(Handover(machine).Freshness!.Fresh);

        // The next boot: the recorded ticket is answered again, to every request.
        Seized(context => WriteAsync(context, HttpStatusCode.OK, recorded!));
        var again = NewMachine();
        Policy(again, FreshnessMode.Required, SeizedTicketUrl);

        AssertRefused(again, again.Run(), "ticket-nonce");
        Assert.Contains(again.ConsoleLines, l => l.Contains("refused reason=ticket-nonce issued_at=", StringComparison.Ordinal)
            && l.Contains("(replayed)", StringComparison.Ordinal));
        Assert.Contains(again.ConsoleLines, l => l.StartsWith("tabula-boot: verified ", StringComparison.Ordinal));   // signatures were fine
    }

    [Fact]
    public async Task Rollback_to_an_older_signed_package_with_a_fresh_ticket_naming_it_is_refused_below_the_policy_floor()
    {
        byte[] old = Package(1);
        Serve(old);
        await servers.SetCurrentAsync(machineClass, Hex(old), 1);             // the controller names the old release
        Policy(machine, FreshnessMode.Required, ControllerTicketUrl, minRelease: 2);

        AssertRefused(machine, machine.Run(), "below-floor");
        Assert.Contains(machine.ConsoleLines, l => l.Contains(
            $"refused reason=below-floor release=1 floor=2 policy_min_release=2 ticket_min_release=0 ospkg_sha256={Hex(old)}", StringComparison.Ordinal));
        Assert.Contains(machine.ConsoleLines, l => l.StartsWith("tabula-boot: verified ", StringComparison.Ordinal));
        Assert.Equal(2, await servers.TicketsIssuedAsync(MachineId));          // a fresh ticket each round
    }

    [Fact]
    public async Task Rollback_below_the_tickets_floor_is_refused_though_the_ticket_names_the_package()
    {
        byte[] old = Package(1);
        Serve(old);
        await servers.SetCurrentAsync(machineClass, Hex(old), 1, floor: 2, force: true);   // floor raised past current
        Policy(machine, FreshnessMode.Required, ControllerTicketUrl, minRelease: 0);

        AssertRefused(machine, machine.Run(), "below-floor");
        Assert.Contains(machine.ConsoleLines, l => l.Contains(
            "refused reason=below-floor release=1 floor=2 policy_min_release=0 ticket_min_release=2", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Ticket_for_another_machine_is_refused_as_ticket_machine()
    {
        byte[] archive = Package(2);
        Serve(archive);
        await servers.SetCurrentAsync(machineClass, Hex(archive), 2);
        byte[] other = Ed25519.NewPrivateKey();
        string otherId = MachineIdentity.MachineId(Ed25519.PublicKeyOf(other));
        // The attacker asks the real controller with the machine's own nonce, for a machine it owns.
        Seized(async context =>
        {
            var request = TicketRequest.Parse(await BodyAsync(context));
            var (status, body) = await servers.AskControllerAsync(TicketRequest.Create(other, request.Nonce, request.MachineClass).ToJson());
            await WriteAsync(context, status, body);
        });
        Policy(machine, FreshnessMode.Required, SeizedTicketUrl);

        AssertRefused(machine, machine.Run(), "ticket-machine");
        Assert.Contains(machine.ConsoleLines, l => l.Contains($"refused reason=ticket-machine ticket_machine={otherId} machine={MachineId}", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Ticket_signed_by_an_unknown_key_is_refused_as_ticket_signature()
    {
        byte[] archive = Package(2);
        Serve(archive);
        await servers.SetCurrentAsync(machineClass, Hex(archive), 2);
        // Everything right but the key: the real Packaging ticket format, signed by a key the machine does not pin.
        SeizedWithTicketOfAnotherKey(archive);
        Policy(machine, FreshnessMode.Required, SeizedTicketUrl);

        AssertRefused(machine, machine.Run(), "ticket-signature");
    }

    [Fact]
    public async Task Ticket_naming_another_digest_than_the_archive_served_is_refused_as_ticket_digest()
    {
        byte[] current = Package(3), served = Package(3, cmdline: Cmdline + " other");   // both validly signed, same release
        Serve(served);
        await servers.SetCurrentAsync(machineClass, Hex(current), 3);
        Policy(machine, FreshnessMode.Required, ControllerTicketUrl);

        AssertRefused(machine, machine.Run(), "ticket-digest");
        Assert.Contains(machine.ConsoleLines, l => l.Contains(
            $"refused reason=ticket-digest ticket_sha256={Hex(current)} ospkg_sha256={Hex(served)}", StringComparison.Ordinal));
    }

    /// <summary>
    /// A machine whose pointer is a channel in the provisioning server's layout (<c>/t/ID/channels/stable.json</c>), the mirror
    /// serving the channel's package there and <paramref name="objects"/> content-addressed beside it (<c>/t/ID/ospkg/HEX.json</c>
    /// naming <c>HEX.zip</c>, as the server and its static export do).
    /// </summary>
    BootHarness ChannelMachine(byte[] channel, params byte[][] objects)
    {
        var m = NewMachine();
        m.HostConfig($$$"""
            {"network_mode": "dhcp", "ospkg_pointer": "{{{new Uri(servers.Mirror, $"/t/{id}/channels/stable.json")}}}",
             "tabula_relay": {"identity_key": "{{{Convert.ToBase64String(identity)}}}", "enrollment_token": "tet_example"}}
            """);
        servers.Files[$"/t/{id}/channels/stable.json"] = SignedPackages.Descriptor(channel, "stable.zip", signers);
        servers.Files[$"/t/{id}/channels/stable.zip"] = channel;
        foreach (byte[] archive in objects)
        {
            servers.Files[$"/t/{id}/ospkg/{Hex(archive)}.json"] = SignedPackages.Descriptor(archive, Hex(archive) + ".zip", signers);
            servers.Files[$"/t/{id}/ospkg/{Hex(archive)}.zip"] = archive;
        }
        return m;
    }

    [Fact]
    public async Task Ticket_naming_another_package_than_the_channel_boots_it_content_addressed_beside_the_pointer()
    {
        // A rollout pins this machine to release 3 while its channel already names release 4 (or a canary's ticket names the
        // target while the channel still names the old one): stboot fetches what its ticket names, not what the channel does.
        byte[] pinned = Package(3), channel = Package(4);
        var m = ChannelMachine(channel, pinned, channel);
        await servers.SetCurrentAsync(machineClass, Hex(pinned), 3);
        Policy(m, FreshnessMode.Required, ControllerTicketUrl, minRelease: 1);

        var outcome = Assert.IsType<BootOutcome.Kexecuted>(m.Run());

        Assert.Equal(Hex(pinned), outcome.OsPackageSha256);
        Assert.Contains(m.ConsoleLines, l => l.StartsWith("tabula-boot: stage:fetch ", StringComparison.Ordinal)
                                             && l.Contains($"url={servers.Mirror}t/{id}/ospkg/{Hex(pinned)}.json ", StringComparison.Ordinal));
        Assert.Contains(m.ConsoleLines, l => Regex.IsMatch(l, $@"^tabula-boot: freshness t=\d+ms fresh release=3 .* ospkg_sha256={Hex(pinned)}$"));
        Assert.DoesNotContain(m.ConsoleLines, l => l.Contains("FAILED", StringComparison.Ordinal));
        Assert.DoesNotContain(MirrorRequests, r => r.Contains("/channels/", StringComparison.Ordinal));   // the channel was not needed
        Assert.True(Handover(m).Freshness!.Fresh);
    }

    [Fact]
    public async Task Without_the_ticketed_object_beside_the_pointer_the_pointer_itself_is_fetched_and_checked_as_before()
    {
        // A mirror that carries only the channel: the content-addressed GET is a 404 on its own FAILED line, then the pointer.
        byte[] current = Package(3), other = Package(3, cmdline: Cmdline + " other");
        var boots = ChannelMachine(current);
        await servers.SetCurrentAsync(machineClass, Hex(current), 3);
        Policy(boots, FreshnessMode.Required, ControllerTicketUrl);
        Assert.Equal(Hex(current), Assert.IsType<BootOutcome.Kexecuted>(boots.Run()).OsPackageSha256);
        Assert.Contains(boots.ConsoleLines, l => l.StartsWith("tabula-boot: FAILED ", StringComparison.Ordinal) && l.Contains(" reason=HttpStatus ", StringComparison.Ordinal)
                                                 && l.Contains($"/t/{id}/ospkg/{Hex(current)}.json", StringComparison.Ordinal));
        Assert.Contains(boots.ConsoleLines, l => l.StartsWith("tabula-boot: stage:fetch ", StringComparison.Ordinal)
                                                 && l.Contains($"url={servers.Mirror}t/{id}/channels/stable.json ", StringComparison.Ordinal));

        // The channel names another package and nothing else is there: refused as ticket-digest, as before.
        var refused = ChannelMachine(other);
        Policy(refused, FreshnessMode.Required, ControllerTicketUrl);
        var restarted = Assert.IsType<BootOutcome.Restarted>(refused.Run());
        Assert.Equal(FailureReason.FreshnessRefused, restarted.Last.Reason);
        Assert.StartsWith("ticket-digest: ", restarted.Last.Detail, StringComparison.Ordinal);
        Assert.Equal(0, refused.Kexec.Loads);
        Assert.Contains(refused.ConsoleLines, l => l.Contains($"refused reason=ticket-digest ticket_sha256={Hex(current)} ospkg_sha256={Hex(other)}", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_ticket_not_signed_by_the_ticket_root_steers_no_fetch()
    {
        // Whoever answers the ticket URL with a ticket of its own key (the seized server) cannot choose what is fetched either.
        byte[] channel = Package(3), chosen = Package(3, cmdline: Cmdline + " chosen");
        var m = ChannelMachine(channel, chosen);
        await servers.SetCurrentAsync(machineClass, Hex(channel), 3);
        SeizedWithTicketOfAnotherKey(chosen);
        Policy(m, FreshnessMode.Required, SeizedTicketUrl);

        AssertRefused(m, m.Run(), "ticket-signature");
        Assert.DoesNotContain(MirrorRequests, r => r.Contains($"/ospkg/{Hex(chosen)}", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Ticket_for_a_package_of_another_machine_class_is_refused_as_machine_class()
    {
        byte[] storage = Package(2, packageClass: "storage");
        Serve(storage);
        await servers.SetCurrentAsync(machineClass, Hex(storage), 2);         // even the controller names it
        Policy(machine, FreshnessMode.Required, ControllerTicketUrl);

        AssertRefused(machine, machine.Run(), "machine-class");
        Assert.Contains(machine.ConsoleLines, l => l.Contains($"refused reason=machine-class class=storage policy_class={machineClass}", StringComparison.Ordinal));
    }

    /// <summary>A loopback port nothing listens on: the controller is down.</summary>
    static Uri DownTicketUrl()
    {
        using var listener = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return new Uri($"https://127.0.0.1:{port}{BootEndpoints.TicketPath}");
    }

    [Fact]
    public void Ticket_controller_down_with_required_waits_and_retries_every_round_and_never_boots()
    {
        Serve(Package(2));
        machine.Options = machine.Options with { MaxRounds = 3 };
        Policy(machine, FreshnessMode.Required, DownTicketUrl());

        var restarted = AssertRefused(machine, machine.Run(), "ticket-unavailable", stage: "ticket");

        Assert.Contains("connection failed", restarted.Last.Detail);
        Assert.Empty(MirrorRequests);                                         // nothing is downloaded that could not boot
        // Per round: 2 ticket attempts one AttemptWait apart; between rounds: RetryWait.
        Assert.Equal(3, machine.Sleeps.Count(s => s == machine.Options.AttemptWait));
        Assert.Equal(2, machine.Sleeps.Count(s => s == machine.Options.RetryWait));
        Assert.Equal(3, machine.ConsoleLines.Count(l => l.StartsWith("tabula-boot: stage:ticket ", StringComparison.Ordinal) && l.Contains(" ticket=none ")));
        Assert.All(machine.ConsoleLines.Where(l => l.Contains("refused reason=ticket-unavailable", StringComparison.Ordinal)),
            l => Assert.EndsWith(" mode=required", l));
    }

    [Fact]
    public async Task Ticket_controller_back_after_failed_rounds_the_machine_boots_fresh()
    {
        byte[] archive = Package(2);
        Serve(archive);
        await servers.SetCurrentAsync(machineClass, Hex(archive), 2);
        int calls = 0;
        // Down for the first round (the connection is cut, twice), then the controller answers.
        Seized(async context =>
        {
            if (Interlocked.Increment(ref calls) <= 2)
            {
                context.Abort();
                return;
            }
            var (status, body) = await servers.AskControllerAsync(await BodyAsync(context));
            await WriteAsync(context, status, body);
        });
        machine.Options = machine.Options with { MaxRounds = 3 };
        Policy(machine, FreshnessMode.Required, SeizedTicketUrl);

        Assert.IsType<BootOutcome.Kexecuted>(machine.Run());
        Assert.Single(machine.ConsoleLines, l => l.Contains("stage=ticket reason=FreshnessRefused", StringComparison.Ordinal) && l.Contains("round=1/3"));
        Assert.True(Handover(machine).Freshness!.Fresh);
        Assert.Contains(machine.ConsoleLines, l => l.StartsWith("tabula-boot: timeline ", StringComparison.Ordinal) && l.Contains(" failed-rounds=1"));
    }

    [Fact]
    public void Fresh_optional_with_the_controller_down_boots_UNFRESH_and_the_handover_says_fresh_false()
    {
        byte[] archive = Package(2);
        Serve(archive);
        Policy(machine, FreshnessMode.Optional, DownTicketUrl());

        var outcome = Assert.IsType<BootOutcome.Kexecuted>(machine.Run());

        Assert.Equal(Hex(archive), outcome.OsPackageSha256);
        Assert.Contains(machine.ConsoleLines, l => Regex.IsMatch(l,
            @"^tabula-boot: freshness t=\d+ms UNFRESH reason=ticket-unavailable \(policy optional\) detail="".*connection failed"));
        Assert.Contains(machine.ConsoleLines, l => l.StartsWith("tabula-boot: timeline ", StringComparison.Ordinal) && Regex.IsMatch(l, @" ticket=\d+ms "));
        Assert.DoesNotContain(machine.ConsoleLines, l => l.Contains("FAILED", StringComparison.Ordinal));
        var freshness = Assert.IsType<HandoverFreshness>(Handover(machine).Freshness);
        Assert.Equal(new HandoverFreshness(false, "ticket-unavailable", null, 2, machineClass), freshness);
    }

    [Fact]
    public void Fresh_optional_without_a_ticket_still_refuses_a_rollback_below_the_policy_floor()
    {
        Serve(Package(1));
        Policy(machine, FreshnessMode.Optional, DownTicketUrl(), minRelease: 2);

        AssertRefused(machine, machine.Run(), "below-floor");
        Assert.Contains(machine.ConsoleLines, l => l.Contains("refused reason=below-floor release=1 floor=2 policy_min_release=2 ticket_min_release=none", StringComparison.Ordinal));
    }

    /// <summary>Answers that are not a ticket, from whoever holds the controller's TLS key.</summary>
    static async Task BadAnswerAsync(HttpContext context, string kind, byte[] genuine)
    {
        switch (kind)
        {
            case "malformed":
                await WriteAsync(context, HttpStatusCode.OK, """{"payload": "not base64!", "signature": 7}"""u8.ToArray());
                break;
            case "truncated":                                                  // a genuine ticket cut in half, framed correctly
                await WriteAsync(context, HttpStatusCode.OK, genuine[..(genuine.Length / 2)]);
                break;
            case "empty":
                await WriteAsync(context, HttpStatusCode.OK, []);
                break;
            case "oversized-content-length":                                  // refused before the body is read
                await WriteAsync(context, HttpStatusCode.OK, new byte[Limits.MaxBootTicketBytes + 1000]);
                break;
            case "oversized-chunked":                                         // no Content-Length: refused at the cap
                context.Response.ContentType = "application/json";
                for (int i = 0; i < 8; i++)
                {
                    await context.Response.Body.WriteAsync(new byte[1024]);
                    await context.Response.Body.FlushAsync();
                }
                break;
            case "cut-connection":                                            // Content-Length 1000, 300 bytes, then a reset (the
                                                                              // client may lose the headers with it: either way no answer)
                context.Response.ContentType = "application/json";
                context.Response.ContentLength = 1000;
                await context.Response.Body.WriteAsync(genuine.AsMemory(0, Math.Min(300, genuine.Length)));
                await context.Response.Body.FlushAsync();
                context.Abort();
                break;
            default:
                throw new ArgumentException(kind);
        }
    }

    [Theory]
    [InlineData("malformed", "required", "ticket-malformed", "error=Malformed")]
    [InlineData("truncated", "required", "ticket-malformed", "error=Malformed")]
    [InlineData("empty", "required", "ticket-malformed", "error=Malformed")]
    [InlineData("oversized-content-length", "required", "ticket-malformed", "error=TooLarge")]
    [InlineData("oversized-chunked", "required", "ticket-malformed", "error=TooLarge")]
    [InlineData("cut-connection", "required", "ticket-unavailable", "connection")]
    [InlineData("malformed", "optional", "ticket-malformed", "error=Malformed")]
    [InlineData("truncated", "optional", "ticket-malformed", "error=Malformed")]
    [InlineData("oversized-content-length", "optional", "ticket-malformed", "error=TooLarge")]
    [InlineData("oversized-chunked", "optional", "ticket-malformed", "error=TooLarge")]
    public async Task Ticket_answer_malformed_oversized_or_truncated_is_a_typed_refusal_and_no_crash(string kind, string mode, string reason, string detail)
    {
        byte[] archive = Package(2);
        Serve(archive);
        await servers.SetCurrentAsync(machineClass, Hex(archive), 2);
        Seized(async context =>
        {
            var (_, genuine) = await servers.AskControllerAsync(await BodyAsync(context));
            await BadAnswerAsync(context, kind, genuine);
        });
        Policy(machine, mode == "required" ? FreshnessMode.Required : FreshnessMode.Optional, SeizedTicketUrl);

        var restarted = AssertRefused(machine, machine.Run(), reason, stage: reason == "ticket-unavailable" ? "ticket" : "freshness");

        Assert.Contains(detail, restarted.Last.Detail);
        Assert.DoesNotContain(machine.ConsoleLines, l => l.Contains("reason=Unexpected", StringComparison.Ordinal));
        // Only a broken connection is worth asking again within the attempt; an answer that is not a ticket is not.
        int asked = servers.Requests.Count(r => r == $"POST {SeizedTicketPath}");
        Assert.Equal(kind == "cut-connection" ? 2 * machine.Options.MaxRounds : machine.Options.MaxRounds, asked);
    }

    [Fact]
    public async Task Fresh_optional_with_a_cut_connection_boots_UNFRESH_like_a_controller_that_is_down()
    {
        byte[] archive = Package(2);
        Serve(archive);
        await servers.SetCurrentAsync(machineClass, Hex(archive), 2);
        Seized(async context =>
        {
            var (_, genuine) = await servers.AskControllerAsync(await BodyAsync(context));
            await BadAnswerAsync(context, "cut-connection", genuine);
        });
        Policy(machine, FreshnessMode.Optional, SeizedTicketUrl);

        Assert.IsType<BootOutcome.Kexecuted>(machine.Run());
        Assert.Contains(machine.ConsoleLines, l => l.Contains("UNFRESH reason=ticket-unavailable (policy optional) detail=\"connection ", StringComparison.Ordinal));
        Assert.Equal(new HandoverFreshness(false, "ticket-unavailable", null, 2, machineClass), Handover(machine).Freshness);
    }
}
