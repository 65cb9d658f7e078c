namespace Tabula.Relay.Sync;

/// <summary>
/// How much of the controller's set the device serves: <paramref name="Wanted"/> peers in the set, <paramref name="Applied"/>
/// on the device, <paramref name="Pending"/> waiting for room (the peer limit, or the device refused more),
/// <paramref name="OutsidePool"/> refused for tunnel addresses outside the relay's pools. <paramref name="PartialReason"/>
/// is null when the device serves the whole set, else <c>peer_limit</c>, <c>device_refused:ERRNO</c> and/or
/// <c>outside_pool</c>, comma-separated. Counts only, never a key or an address.
/// </summary>
public readonly record struct PeerSyncStatus(int Wanted, int Applied, int Pending, int OutsidePool, string? PartialReason)
{
    public bool Partial => PartialReason is not null;
}
