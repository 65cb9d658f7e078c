using System.Security.Cryptography;
using Tabula.Packaging;

namespace Tabula.Boot.Freshness;

/// <summary>
/// One boot attempt's ticket exchange: the fresh nonce (zeroed by <see cref="Dispose"/>), this machine's id, and what the
/// controller answered: the ticket bytes, or why there is none. Made by <see cref="States.RequestTicket"/>, consumed by
/// <see cref="States.CheckFreshness"/>; a failed round (<see cref="States.Recover"/>) drops it, so the next attempt asks
/// again with a new nonce.
/// </summary>
internal sealed class FreshnessRound(byte[] nonce, string? machineId) : IDisposable
{
    /// <summary>The 32 random bytes sent in this attempt's request.</summary>
    public byte[] Nonce { get; } = nonce;

    /// <summary>This machine's id (from the identity key), or null when the host configuration has no identity key.</summary>
    public string? MachineId { get; } = machineId;

    /// <summary>The ticket as received (at most 4 KiB), or null.</summary>
    public byte[]? Ticket { get; init; }

    /// <summary>Why there is no ticket (one line, no secrets), when <see cref="Ticket"/> is null.</summary>
    public string? Unavailable { get; init; }

    /// <summary>An answer that cannot be a ticket (over the cap, empty): refused as ticket-malformed, never booted unfresh.</summary>
    public BootTicketException? NotATicket { get; init; }

    public void Dispose() => CryptographicOperations.ZeroMemory(Nonce);
}
