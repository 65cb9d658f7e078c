using Tabula.Fleet.Security;
using Tabula.Fleet.Storage;

namespace Tabula.Fleet.Core;

/// <summary>
/// Vouchers: codes staff issue so a customer may create an account (<see cref="AccountCreation.Voucher"/>). The code is
/// shown once; only its SHA-256 is stored (256-bit random, like every bearer secret). Issuing and revoking are audited.
/// </summary>
public sealed class VoucherService(IStore store)
{
    public async Task<(string Code, Voucher Voucher)> CreateAsync(Staff staff, string name, int? uses, int? validDays, CancellationToken ct)
    {
        if (name.Length is 0 or > FleetLimits.MaxVoucherNameLength || name.Any(char.IsControl))
            throw new FleetException(FleetError.InvalidInput, $"a voucher's name is 1-{FleetLimits.MaxVoucherNameLength} printable characters");
        int maxUses = uses ?? 1;
        if (maxUses is < 1 or > FleetLimits.MaxVoucherUses)
            throw new FleetException(FleetError.InvalidInput, $"uses is 1-{FleetLimits.MaxVoucherUses}");
        if (validDays is < 1 or > 3650) throw new FleetException(FleetError.InvalidInput, "valid_days is 1-3650");
        string code = Secrets.NewToken("tv");
        return await store.WriteAsync<(string, Voucher)>(async tx =>
        {
            long expires = tx.Now + (long)(validDays is { } d ? TimeSpan.FromDays(d) : FleetLimits.DefaultVoucherLifetime).TotalMilliseconds;
            long id = await tx.InsertVoucherAsync(Secrets.HashToken(code), name, maxUses, expires, staff.Username);
            await tx.AuditAsync(staff.Username, "voucher.create", $"voucher {id}", null, $"name={name}, uses={maxUses}");
            return (code, new Voucher(id, name, maxUses, 0, tx.Now, staff.Username, expires, null));
        }, ct);
    }

    public Task<IReadOnlyList<Voucher>> ListAsync(CancellationToken ct) => store.ReadAsync(tx => tx.ListVouchersAsync(), ct);

    public Task RevokeAsync(Staff staff, long id, string? reason, CancellationToken ct)
    {
        if (reason is { Length: > FleetLimits.MaxReasonLength })
            throw new FleetException(FleetError.InvalidInput, $"reasons are at most {FleetLimits.MaxReasonLength} characters");
        return store.WriteAsync(async tx =>
        {
            if (!await tx.RevokeVoucherAsync(id)) throw new FleetException(FleetError.NotFound, "no such voucher, or revoked before");
            await tx.AuditAsync(staff.Username, "voucher.revoke", $"voucher {id}", reason, null);
            return 0;
        }, ct);
    }
}
