namespace Tabula.Fleet.Protocol;

/// <summary>
/// The freshness of the relay's boot as stboot handed it over (the hand-over record's <c>freshness</c> object, issue 16),
/// reported at enrollment in <see cref="EnrollBody.Freshness"/>. The controller trusts none of it by itself: it verifies
/// <see cref="Ticket"/> with its own ticket key, that the ticket names this machine and the reported package, and that it
/// issued it; <see cref="Fresh"/> and <see cref="Reason"/> only explain an unfresh boot (e.g. <c>ticket-unavailable</c> under
/// an optional policy).
/// </summary>
/// <param name="Fresh">stboot's verdict.</param>
/// <param name="Reason">stboot's refusal reason name when not fresh (docs/boot.md), else null.</param>
/// <param name="Ticket">The boot ticket's bytes as base64, as stboot received them, or null when it had none.</param>
/// <param name="Release">The booted package manifest's release (0: none).</param>
/// <param name="MachineClass">The booted package manifest's machine class, or null.</param>
public sealed record FreshnessReport(bool Fresh, string? Reason, string? Ticket, long Release, string? MachineClass);
