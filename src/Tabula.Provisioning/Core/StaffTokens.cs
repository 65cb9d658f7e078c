using System.Security.Cryptography;
using System.Text;

namespace Tabula.Provisioning.Core;

/// <summary>
/// Staff bearer tokens: 32 random bytes, shown once as <c>tbl_&lt;base64url&gt;</c>; the store keeps only the
/// SHA-256 of the token text. A token is high-entropy, so an unsalted hash suffices, and comparison is constant
/// time over every stored hash.
/// </summary>
public static class StaffTokens
{
    const string Prefix = "tbl_";

    /// <summary>Makes a new token. Returns the token text (give it to the staff member) and the record to store.</summary>
    public static (string Token, TokenRecord Record) Create(string name, DateTimeOffset now) => Create(name, now, StaffRoles.All);

    /// <summary>Makes a new token holding only <paramref name="roles"/> (<see cref="StaffRoles"/>).</summary>
    public static (string Token, TokenRecord Record) Create(string name, DateTimeOffset now, IReadOnlyCollection<string> roles) =>
        Create(name, now, roles, expiresAt: null);

    /// <summary>Makes a new token holding <paramref name="roles"/> that stops working at <paramref name="expiresAt"/> (null: never).</summary>
    public static (string Token, TokenRecord Record) Create(string name, DateTimeOffset now, IReadOnlyCollection<string> roles, DateTimeOffset? expiresAt)
    {
        if (expiresAt <= now)
            throw new ProvisioningException(ProvisioningError.MalformedRequest, "a token's expiry must lie in the future");
        if (roles.Count == 0 || roles.Any(r => !StaffRoles.All.Contains(r, StringComparer.Ordinal)))
            throw new ProvisioningException(ProvisioningError.InvalidName, $"roles must be some of: {string.Join(", ", StaffRoles.All)}");
        if (!Names.IsValid(name))
            throw new ProvisioningException(ProvisioningError.InvalidName, "token " + Names.Rule);
        Span<byte> secret = stackalloc byte[32];
        RandomNumberGenerator.Fill(secret);
        string token = Prefix + Convert.ToBase64String(secret).TrimEnd('=').Replace('+', '-').Replace('/', '_');
        CryptographicOperations.ZeroMemory(secret);
        return (token, new TokenRecord(name, Hash(token), now) { Roles = [.. StaffRoles.All.Where(roles.Contains)], ExpiresAt = expiresAt });
    }

    /// <summary>Returns the name of the token that <paramref name="presented"/> is, or null.</summary>
    public static string? Authenticate(string? presented, IReadOnlyList<TokenRecord> tokens) => Find(presented, tokens)?.Name;

    /// <summary>Returns the token record that <paramref name="presented"/> is, or null.</summary>
    public static TokenRecord? Find(string? presented, IReadOnlyList<TokenRecord> tokens)
    {
        if (presented is null || !presented.StartsWith(Prefix, StringComparison.Ordinal) || presented.Length > 128)
            return null;
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(Encoding.UTF8.GetBytes(presented), hash);
        TokenRecord? match = null;
        foreach (var t in tokens)
        {
            byte[] stored = t.Sha256.Length == 64 ? Convert.FromHexString(t.Sha256) : new byte[32];
            if (CryptographicOperations.FixedTimeEquals(hash, stored))
                match = t;
        }
        return match;
    }

    /// <summary>Tokens made by `token create` without --expires live this long; never only when asked for.</summary>
    public static readonly TimeSpan DefaultLifetime = TimeSpan.FromDays(90);

    /// <summary>
    /// `--expires`: null or empty for <see cref="DefaultLifetime"/>, <c>never</c> (null), a duration in days or hours
    /// (<c>90d</c>, <c>12h</c>) or an ISO 8601 time; in the future and at most ten years ahead.
    /// </summary>
    public static DateTimeOffset? ParseExpiry(string? text, DateTimeOffset now)
    {
        if (string.IsNullOrWhiteSpace(text)) return now + DefaultLifetime;
        if (text == "never") return null;
        DateTimeOffset at;
        if (text.Length is >= 2 and <= 8 && text[^1] is 'd' or 'h'
            && int.TryParse(text.AsSpan(0, text.Length - 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int n)
            && n > 0)
            at = now + (text[^1] == 'd' ? TimeSpan.FromDays(n) : TimeSpan.FromHours(n));
        else if (text.Length > 40 || !DateTimeOffset.TryParse(text, System.Globalization.CultureInfo.InvariantCulture,
                     System.Globalization.DateTimeStyles.AssumeUniversal, out at))
            throw new ProvisioningException(ProvisioningError.MalformedRequest, "--expires is never, a duration (90d, 12h) or an ISO 8601 time");
        if (at <= now || at - now > TimeSpan.FromDays(3660))
            throw new ProvisioningException(ProvisioningError.MalformedRequest, "--expires lies in the future, at most ten years ahead (or never)");
        return at;
    }

    static string Hash(string token) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(token)));
}
