namespace Tabula.Fleet.Storage;

/// <summary>
/// What keeps the customer API from being drained (issue 17, availability): released tunnel address slots, the
/// per-account window of device additions, staff-issued vouchers and proof-of-work challenges for account creation.
/// </summary>
public interface IAccountGateTx : ITx
{
    /// <summary>Frees a tunnel address slot whose removal relays drop at <paramref name="revision"/>.</summary>
    Task ReleaseAddressAsync(long slot, long revision);

    /// <summary>
    /// Takes the longest-released slot whose removal every relay has applied (revision at most
    /// <paramref name="appliedBy"/>) and that was released at or before <paramref name="releasedBefore"/>; null if none.
    /// </summary>
    Task<long?> TakeReleasedAddressAsync(long appliedBy, long releasedBefore);

    /// <summary>Released slots not reused yet (metrics).</summary>
    Task<long> CountReleasedAddressesAsync();

    /// <summary>
    /// The lowest revision applied by a machine that receives peers (provisioned, deployed, draining); null when there is
    /// none, so no relay can hold a removed peer.
    /// </summary>
    Task<long?> MinAppliedRevisionAsync();

    Task<(long WindowStart, long Count)> DeviceChurnAsync(long accountId);
    Task SetDeviceChurnAsync(long accountId, long windowStart, long count);

    Task<long> InsertVoucherAsync(byte[] codeHash, string name, int maxUses, long? expiresAt, string createdBy);
    Task<IReadOnlyList<Voucher>> ListVouchersAsync();
    /// <summary>Marks a voucher revoked; false if there is no such voucher or it was revoked before.</summary>
    Task<bool> RevokeVoucherAsync(long id);
    /// <summary>Uses a voucher once if it is valid (not revoked, not expired, uses left); false otherwise.</summary>
    Task<bool> RedeemVoucherAsync(byte[] codeHash);

    Task InsertAccountChallengeAsync(byte[] challenge, long expiresAt);
    /// <summary>Deletes a live challenge; false if it is unknown, expired or used before.</summary>
    Task<bool> ConsumeAccountChallengeAsync(byte[] challenge);
}

/// <summary>A staff-issued voucher for account creation; only the code's hash is stored.</summary>
public sealed record Voucher(long Id, string Name, int MaxUses, int Uses, long CreatedAt, string CreatedBy, long? ExpiresAt, long? RevokedAt);
