using Microsoft.AspNetCore.Http;
using Tabula.Provisioning.Core;

namespace Tabula.Provisioning.Http;

/// <summary>Authenticates staff requests by bearer token against the stored token hashes. Returns the token's
/// name, which is the actor in the audit log.</summary>
public sealed class StaffAuth(IStore store, TimeProvider time)
{
    // When this process last recorded each token's use: the store is written at most once a minute per token.
    readonly System.Collections.Concurrent.ConcurrentDictionary<string, DateTimeOffset> recorded = new();
    static readonly TimeSpan UseGranularity = TimeSpan.FromMinutes(1);

    /// <summary>Authenticates and requires every role in <paramref name="roles"/>; returns the token's name.</summary>
    public async Task<string> AuthenticateAsync(HttpContext http, params string[] roles)
    {
        string? header = http.Request.Headers.Authorization;
        string? presented = header is not null && header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase)
            ? header["Bearer ".Length..].Trim()
            : null;
        if (presented is null)
            throw new ProvisioningException(ProvisioningError.Unauthenticated, "a staff bearer token is required");
        var token = StaffTokens.Find(presented, await store.ListTokensAsync(http.RequestAborted))
                    ?? throw new ProvisioningException(ProvisioningError.Unauthenticated, "the bearer token is not valid");
        var now = time.GetUtcNow();
        if (token.ExpiresAt is { } expires && expires <= now)
            throw new ProvisioningException(ProvisioningError.Unauthenticated, "the bearer token has expired");
        if (!recorded.TryGetValue(token.Id, out var last) || now - last >= UseGranularity)
        {
            recorded[token.Id] = now;
            await store.RecordTokenUseAsync(token.Id, now, http.RequestAborted);
        }
        foreach (string role in roles)
            if (!StaffRoles.Has(token, role))
                throw new ProvisioningException(ProvisioningError.Forbidden, $"token {token.Name} lacks the {role} role");
        return token.Name;
    }
}
