using Tabula.Fleet.Storage;

namespace Tabula.Fleet.Core;

/// <summary>
/// Every bearer token staff hand out, in one list: sessions, API tokens, enrollment tokens (issue 17, "Tokens"). A listing
/// never holds a secret (only hashes are stored). Revoking deletes the row in one audited transaction; since every request
/// authenticates against the database, the token is refused from the next request on, on every controller instance.
/// Relay tokens are not listed: each belongs to one machine's boot and is replaced by its next enrollment (retire the machine).
/// </summary>
public sealed class TokenService(IStore store)
{
    /// <summary>All tokens (admins), or only <paramref name="viewer"/>'s own sessions and API tokens (everyone else).</summary>
    public Task<IReadOnlyList<TokenInfo>> ListAsync(Staff viewer, CancellationToken ct) => store.ReadAsync<IReadOnlyList<TokenInfo>>(async tx =>
    {
        var staffTokens = await tx.ListStaffTokensAsync();
        if (viewer.Role != StaffRole.Admin) return [.. staffTokens.Where(t => t.Owner == viewer.Username)];
        return [.. staffTokens, .. (await tx.ListEnrollmentTokensAsync()).Select(Describe)];
    }, ct);

    /// <summary>Revokes token <paramref name="id"/> ("api-12"): admins any, everyone else only their own session or API token.</summary>
    public Task<TokenInfo> RevokeAsync(Staff actor, string id, string? reason, CancellationToken ct)
    {
        if (reason is { Length: > FleetLimits.MaxReasonLength })
            throw new FleetException(FleetError.InvalidInput, $"reasons are at most {FleetLimits.MaxReasonLength} characters");
        var (kind, number) = ParseId(id);
        return store.WriteAsync(async tx =>
        {
            TokenInfo? revoked;
            if (kind == TokenKind.Enrollment)
            {
                if (actor.Role != StaffRole.Admin) throw new FleetException(FleetError.Forbidden, "only admins revoke enrollment tokens");
                revoked = await tx.RevokeEnrollmentTokenAsync(number) is { } e ? Describe(e) : null;
            }
            else
            {
                // Not the caller's own and not an admin: "not found" would tell them less, but they may list only their own anyway.
                var row = (await tx.ListStaffTokensAsync()).FirstOrDefault(t => t.Id == id);
                if (row is not null && row.Owner != actor.Username && actor.Role != StaffRole.Admin)
                    throw new FleetException(FleetError.Forbidden, "only admins revoke other staff members' tokens");
                revoked = row is null ? null : await tx.RevokeStaffTokenAsync(number);
            }
            if (revoked is null || revoked.Kind != kind) throw new FleetException(FleetError.NotFound, $"no token {id}");
            await tx.AuditAsync(actor.Username, "token.revoke", id, reason, $"kind={kind.Name()}, owner={revoked.Owner}, name={revoked.Name}");
            return revoked;
        }, ct);
    }

    /// <summary>"api-12" → (Api, 12); anything else is invalid input.</summary>
    public static (TokenKind Kind, long Number) ParseId(string id)
    {
        int dash = id.LastIndexOf('-');
        if (id.Length <= 32 && dash > 0 && MachineStateNames.TryParseTokenKind(id[..dash], out var kind)
            && long.TryParse(id.AsSpan(dash + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out long n) && n > 0)
            return (kind, n);
        throw new FleetException(FleetError.InvalidInput, "a token id is KIND-N: session-3, api-12, enrollment-5 (tabula fleet tokens list)");
    }

    public static TokenInfo Describe(EnrollmentToken t) => new($"enrollment-{t.Id}", TokenKind.Enrollment, t.Name, t.CreatedBy, null, t.CreatedAt,
        t.ExpiresAt, t.LastUsedAt, t.SingleUse, t.UsedAt, t.Machine);
}
