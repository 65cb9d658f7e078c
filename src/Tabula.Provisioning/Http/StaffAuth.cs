using Microsoft.AspNetCore.Http;
using Tabula.Provisioning.Core;

namespace Tabula.Provisioning.Http;

/// <summary>Authenticates staff requests by bearer token against the stored token hashes. Returns the token's
/// name, which is the actor in the audit log.</summary>
public sealed class StaffAuth(IStore store)
{
    public async Task<string> AuthenticateAsync(HttpContext http)
    {
        string? header = http.Request.Headers.Authorization;
        string? presented = header is not null && header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase)
            ? header["Bearer ".Length..].Trim()
            : null;
        if (presented is null)
            throw new ProvisioningException(ProvisioningError.Unauthenticated, "a staff bearer token is required");
        return StaffTokens.Authenticate(presented, await store.ListTokensAsync(http.RequestAborted))
               ?? throw new ProvisioningException(ProvisioningError.Unauthenticated, "the bearer token is not valid");
    }
}
