using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using Tabula.Fleet.Protocol;
using Tabula.Fleet.Security;
using Tabula.Fleet.Storage;
using Tabula.Packaging.Crypto;

namespace Tabula.Fleet.Core;

/// <summary>
/// Relay machines after enrollment: listing, the staff lifecycle (provision, deploy, drain, retire, …) with placement
/// validation, relay authentication, applied-revision reports, and what a relay serves with.
/// </summary>
public sealed class MachineService(IStore store, MachineEvents machineEvents, RelayEgressSettings egress, AttestationService attestation,
    ILogger<MachineService> logger)
{
    /// <summary>Each machine's attestation record by machine id (issue 19; machines that enrolled before have none).</summary>
    public async Task<IReadOnlyDictionary<string, MachineAttestation>> AttestationsAsync(CancellationToken ct) =>
        (await store.ReadAsync(tx => tx.ListMachineAttestationsAsync(), ct)).ToDictionary(a => a.MachineId, StringComparer.Ordinal);

    public Task<MachineAttestation?> AttestationAsync(string machineId, CancellationToken ct) =>
        store.ReadAsync(tx => tx.GetMachineAttestationAsync(machineId), ct);

    /// <summary>How many machines are in each state (metrics).</summary>
    public Task<IReadOnlyDictionary<MachineState, long>> CountByStateAsync(CancellationToken ct) => Read(tx => tx.CountMachinesByStateAsync(), ct);

    public Task<IReadOnlyList<Machine>> ListMachinesAsync(MachineState? state, CancellationToken ct) =>
        Read(tx => tx.ListMachinesAsync(state), ct);

    public async Task<Machine> GetMachineAsync(string id, CancellationToken ct) =>
        await Read(tx => tx.GetMachineAsync(id, forUpdate: false), ct)
        ?? throw new FleetException(FleetError.NotFound, $"no machine \"{Truncate(id)}\"");

    public async Task<Machine> TransitionAsync(Staff staff, string machineId, MachineLifecycle.Action action, string? reason,
        RelayPlacement? placement, CancellationToken ct, bool overrideFreshness = false)
    {
        if (overrideFreshness && action != MachineLifecycle.Action.Deploy)
            throw new FleetException(FleetError.InvalidInput, "override_freshness applies to deploy only");
        if (overrideFreshness) ReleaseService.ValidateReason(reason, required: true);
        if (reason is { Length: > FleetLimits.MaxReasonLength })
            throw new FleetException(FleetError.InvalidInput, $"reasons are at most {FleetLimits.MaxReasonLength} characters");
        if (action == MachineLifecycle.Action.Provision)
        {
            ValidatePlacement(placement ?? throw new FleetException(FleetError.InvalidInput, "provision needs a placement (hostname, location, …)"));
            // The relay NATs customers to the egress addresses (the in-addresses when none are given) and clients connect to the
            // in-addresses: each must be one a relay can hold on its uplink (RelayEgressSettings.CheckPublicAddress).
            foreach (var (field, address) in PublicAddresses(placement))
                egress.CheckPublicAddress(field, address);
            placement = WithCoordinates(placement);
        }
        // The whole store (not only this service's slice): deploy reads the machine's freshness in the same transaction.
        var machine = await store.WriteAsync(async tx =>
        {
            var current = await tx.GetMachineAsync(machineId, forUpdate: true)
                          ?? throw new FleetException(FleetError.NotFound, $"no machine \"{Truncate(machineId)}\"");
            var to = MachineLifecycle.Apply(current, action);
            // Required attestation (issue 19): a machine whose latest enrollment did not attest is never put into service.
            if (attestation.Policy == AttestationPolicy.Required && action is MachineLifecycle.Action.Provision or MachineLifecycle.Action.Deploy)
            {
                var attested = await tx.GetMachineAttestationAsync(current.Id);
                if (attested is not { Status: AttestationStatus.Attested })
                    throw new FleetException(FleetError.NotAttested, attested is null
                        ? "attestation is required and this machine never attested; it must re-enroll with TPM evidence"
                        : $"attestation is required and this machine's latest enrollment is {attested.Status.Name()}"
                          + (attested.FailedStep is { } step ? $" at step {step}: {attested.Detail}" : $": {attested.Detail}"));
            }
            if (action == MachineLifecycle.Action.Deploy
                && await ReleaseService.WhyNotDeployableAsync(tx, current.Id, current.PackageDigest) is { } unfresh)
            {
                if (!overrideFreshness)
                    throw new FleetException(FleetError.Unfresh,
                        $"this machine's boot is not known fresh ({unfresh}); deploy it anyway only with --override-freshness --reason R");
                await tx.AuditAsync(staff.Username, "machine.override-freshness", machineId, reason, $"{unfresh}, package {current.PackageDigest}");
            }
            if (placement is not null && await tx.HostnameTakenAsync(placement.Hostname, machineId))
                throw new FleetException(FleetError.Duplicate, $"hostname \"{placement.Hostname}\" is taken");
            var updated = current with { State = to, PreviousState = null, Placement = placement ?? current.Placement, UpdatedAt = tx.Now };
            await tx.UpdateMachineAsync(updated);
            await tx.ScrubDeletedKeysAsync();   // a retired laggard no longer holds deleted keys in the log
            await tx.AuditAsync(staff.Username, "machine." + action.ToString().ToLowerInvariant(), machineId, reason,
                $"{current.State.Name()} -> {to.Name()}" + (placement is null ? "" : $", hostname {placement.Hostname}"));
            await tx.NotifyAsync("machines");
            return updated;
        }, ct);
        machineEvents.Changed();
        Log.MachineTransition(logger, machineId, action.ToString(), machine.State.Name(), staff.Username);
        return machine;
    }

    /// <summary>Fills in the city's coordinates from <see cref="CityTable"/> when staff gave none.</summary>
    private static RelayPlacement WithCoordinates(RelayPlacement p)
    {
        if (p.Latitude is null != p.Longitude is null)
            throw new FleetException(FleetError.InvalidInput, "latitude and longitude come together");
        if (p.Latitude is not null)
            return p.Latitude is >= -90 and <= 90 && p.Longitude is >= -180 and <= 180 ? p
                : throw new FleetException(FleetError.InvalidInput, "latitude is -90..90 and longitude -180..180 (degrees)");
        if (CityTable.TryGet(p.CountryCode, p.CityCode, out double latitude, out double longitude))
            return p with { Latitude = latitude, Longitude = longitude };
        throw new FleetException(FleetError.InvalidInput,
            $"give latitude and longitude for {p.CountryCode}-{p.CityCode}: the relay list carries them and the city table knows only " +
            string.Join(", ", CityTable.Codes));
    }

    private static void ValidatePlacement(RelayPlacement p)
    {
        static bool Label(string s) => s.Length is > 0 and <= FleetLimits.MaxHostnameLength
                                       && s.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c == '-') && s[0] != '-' && s[^1] != '-';
        if (!Label(p.Hostname)) throw new FleetException(FleetError.InvalidInput, "hostname is a DNS label: 1-63 characters of [a-z0-9-]");
        if (p.CountryCode.Length != 2 || !p.CountryCode.All(char.IsAsciiLetterLower))
            throw new FleetException(FleetError.InvalidInput, "country_code is two lowercase letters (ISO 3166-1)");
        if (p.CityCode.Length != 3 || !p.CityCode.All(char.IsAsciiLetterLower))
            throw new FleetException(FleetError.InvalidInput, "city_code is three lowercase letters");
        foreach (var (name, value) in new[] { ("country", p.Country), ("city", p.City), ("provider", p.Provider) })
            if (value.Length is 0 or > 100) throw new FleetException(FleetError.InvalidInput, $"{name} is 1-100 characters");
        foreach (var (field, text) in PublicAddresses(p))
        {
            var family = field.StartsWith("ipv4", StringComparison.Ordinal)
                ? System.Net.Sockets.AddressFamily.InterNetwork : System.Net.Sockets.AddressFamily.InterNetworkV6;
            // Strict: IPv4 as four decimal octets (TryParse also takes "1.2.3" and octal/hex parts, which the agent would read
            // as another address), IPv6 without a zone.
            if (!System.Net.IPAddress.TryParse(text, out var address) || address.AddressFamily != family || text.Contains('%', StringComparison.Ordinal)
                || (family == System.Net.Sockets.AddressFamily.InterNetwork && address.ToString() != text))
                throw new FleetException(FleetError.InvalidInput, $"{field} is an {(family == System.Net.Sockets.AddressFamily.InterNetwork ? "IPv4" : "IPv6")} address");
        }
        if (p.Port is < 1 or > 65535) throw new FleetException(FleetError.InvalidInput, "port is 1-65535");
        if (p.Weight is < 0 or > 10000) throw new FleetException(FleetError.InvalidInput, "weight is 0-10000");
    }

    /// <summary>The placement's public addresses that are given, with their field names: in-addresses and egress addresses.</summary>
    private static IEnumerable<(string Field, string Address)> PublicAddresses(RelayPlacement p)
    {
        yield return ("ipv4_addr_in", p.Ipv4AddrIn);
        if (p.Ipv6AddrIn is not null) yield return ("ipv6_addr_in", p.Ipv6AddrIn);
        if (p.Ipv4AddrOut is not null) yield return ("ipv4_addr_out", p.Ipv4AddrOut);
        if (p.Ipv6AddrOut is not null) yield return ("ipv6_addr_out", p.Ipv6AddrOut);
    }

    private static string Truncate(string s) => s.Length > 64 ? s[..64] + "…" : s;

    public async Task<Machine?> AuthenticateRelayAsync(string? token, CancellationToken ct) =>
        string.IsNullOrEmpty(token) ? null : await Read(tx => tx.GetMachineByRelayTokenAsync(Secrets.HashToken(token)), ct);

    public Task ReportAppliedAsync(Machine relay, long revision, CancellationToken ct)
    {
        if (revision < 0) throw new FleetException(FleetError.InvalidInput, "revision must not be negative");
        return Write(async tx =>
        {
            long head = await tx.HeadRevisionAsync();
            if (revision > head) throw new FleetException(FleetError.InvalidInput, "revision is ahead of the controller");
            await tx.SetAppliedRevisionAsync(relay.Id, revision);
            await tx.ScrubDeletedKeysAsync();   // the last relay to apply a removal makes its key go
            return 0;
        }, ct);
    }

    public Task<(long Head, long Deployed, long Applied)> AppliedAsync(long revision, CancellationToken ct) =>
        Read(async tx =>
        {
            var (deployed, applied) = await tx.CountAppliedAsync(revision);
            return (await tx.HeadRevisionAsync(), deployed, applied);
        }, ct);

    // Transactions through this service's slice of the store only.
    private Task<T> Write<T>(Func<IMachineTx, Task<T>> work, CancellationToken ct) => store.WriteAsync(tx => work(tx), ct);
    private Task<T> Read<T>(Func<IMachineTx, Task<T>> work, CancellationToken ct) => store.ReadAsync(tx => work(tx), ct);
}
