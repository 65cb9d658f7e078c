using System.Text.Json.Serialization;
using Tabula.Fleet.Core;

namespace Tabula.Fleet.Api;

// Rollouts (issue 18): /api/v1/rollouts. Listed in FleetJson (Contracts.cs). GET /api/v1/rollouts/latest and
// `tabula fleet rollout status --json` print the same RolloutView (the dashboard's rollout view reads it): fields may be
// added, never renamed or dropped. Nullable fields are written as null, not left out.

/// <summary>POST /api/v1/rollouts: release or digest; batch or max_unavailable (percent); the rest have defaults.</summary>
public sealed record StartRolloutRequest(string? Channel, long? Release, string? Digest, int? Canary, int? Batch, int? MaxUnavailable,
    int? DrainSeconds, int? PerLocationMin, int? DeadlineSeconds, int? MinServingPercent, string? Reason);

/// <summary>One machine of a rollout: its step (pending, draining, rebooting, returning, done, failed, skipped) and timings.</summary>
public sealed record RolloutMachineView(
    string MachineId,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? Hostname,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? Location,
    string Step,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] DateTimeOffset? StartedAt,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] DateTimeOffset? FinishedAt,
    string FromSha256,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? BootedSha256,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? Reason,
    bool Canary, int Position)
{
    public static RolloutMachineView From(RolloutMachine m, Rollout r) => new(m.MachineId, m.Hostname, m.Location, m.Step.Name(), At(m.StartedAt),
        At(m.FinishedAt), m.FromSha256, m.BootedSha256, m.Reason, m.Position < r.Canary, m.Position);

    internal static DateTimeOffset? At(long? ms) => ms is { } v ? DateTimeOffset.FromUnixTimeMilliseconds(v) : null;
}

/// <summary>A rollout with its machines in order.</summary>
public sealed record RolloutView(
    long Id, string Channel,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] long? Release,
    string Digest, string State, int Canary,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] int? Batch,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] int? MaxUnavailable,
    int DrainSeconds, int PerLocationMin, DateTimeOffset CreatedAt, DateTimeOffset UpdatedAt,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? HaltReason,
    List<RolloutMachineView> Machines,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? MachineClass,
    int DeadlineSeconds, int MinServingPercent, string CreatedBy, int Done, int Total)
{
    public static RolloutView From(Rollout r, IReadOnlyList<RolloutMachine> machines) => new(r.Id, r.Channel, r.Release, r.Digest, r.State.Name(),
        r.Canary, r.Batch, r.MaxUnavailablePercent, r.DrainSeconds, r.PerLocationMin, DateTimeOffset.FromUnixTimeMilliseconds(r.CreatedAt),
        DateTimeOffset.FromUnixTimeMilliseconds(r.UpdatedAt), r.HaltReason, machines.Select(m => RolloutMachineView.From(m, r)).ToList(),
        r.MachineClass, r.DeadlineSeconds, r.MinServingPercent, r.CreatedBy,
        machines.Count(m => m.Step is RolloutStep.Done or RolloutStep.Skipped), machines.Count);
}
