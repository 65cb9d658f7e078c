using Tabula.Fleet.Storage;

namespace Tabula.Fleet.Api;

// Account creation (POST /app/v1/accounts) and vouchers (/api/v1/vouchers); serialized through FleetJson (Contracts.cs).
public sealed record SelfServiceAccountRequest(string? Voucher, string? Challenge, string? Nonce);
public sealed record AccountChallengeView(string Challenge, int DifficultyBits, DateTimeOffset ExpiresAt);
public sealed record CreateVoucherRequest(string? Name, int? Uses, int? ValidDays);
public sealed record VoucherCreated(long Id, string Code, string Name, int MaxUses, DateTimeOffset? ExpiresAt);
public sealed record VoucherView(long Id, string Name, int MaxUses, int Uses, DateTimeOffset CreatedAt, string CreatedBy,
    DateTimeOffset? ExpiresAt, DateTimeOffset? RevokedAt)
{
    public static VoucherView From(Voucher v) => new(v.Id, v.Name, v.MaxUses, v.Uses, DateTimeOffset.FromUnixTimeMilliseconds(v.CreatedAt),
        v.CreatedBy, v.ExpiresAt is { } e ? DateTimeOffset.FromUnixTimeMilliseconds(e) : null,
        v.RevokedAt is { } r ? DateTimeOffset.FromUnixTimeMilliseconds(r) : null);
}
