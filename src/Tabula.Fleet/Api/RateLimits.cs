using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Threading.RateLimiting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Tabula.Fleet.Protocol;

namespace Tabula.Fleet.Api;

/// <summary>
/// ASP.NET Core's rate limiter on every endpoint group. Each group names a policy (<c>RequireRateLimiting</c>): the named
/// policy limits per source address, and the global limiter limits the same group per credential (a hash of the
/// Authorization header), so one address cannot spend a credential's budget for everyone and one credential cannot be
/// spread over many addresses. A refusal is 429 <c>rate_limited</c> with Retry-After. Source addresses and credentials are
/// in-memory partition keys only: never logged, never exported.
/// </summary>
public static class RateLimits
{
    public const string Customer = "customer", Accounts = "accounts", RelayList = "relay-list", Login = "login",
        Enrollment = "enrollment", Relay = "relay", Staff = "staff", Boot = "boot", Public = "public";

    public static RateLimit For(this FleetRateLimits limits, string policy) => policy switch
    {
        Customer => limits.Customer, Accounts => limits.Accounts, RelayList => limits.RelayList, Login => limits.Login,
        Enrollment => limits.Enrollment, Relay => limits.Relay, Staff => limits.Staff, Boot => limits.Boot, Public => limits.Public,
        _ => new RateLimit(0, 0),
    };

    public static void AddFleetRateLimits(this IServiceCollection services, FleetRateLimits limits)
    {
        // Off means off: no per-username login budget either.
        services.AddSingleton(sp => new LoginThrottle(limits.Enabled ? limits.Login.PerCredential : 0, limits.Enabled,
            sp.GetRequiredService<TimeProvider>()));
        services.AddRateLimiter(o =>
        {
            o.RejectionStatusCode = StatusCodes.Status429TooManyRequests;
            o.OnRejected = async (context, ct) =>
            {
                var response = context.HttpContext.Response;
                if (context.Lease.TryGetMetadata(MetadataName.RetryAfter, out TimeSpan retry))
                    response.Headers.RetryAfter = ErrorMapping.RetryAfterSeconds(retry);
                await response.WriteAsJsonAsync(new ErrorBody("rate_limited", "too many requests from this address or with this credential; retry later"),
                    FleetJson.Default.ErrorBody, contentType: null, ct);
            };
            foreach (string policy in new[] { Customer, Accounts, RelayList, Login, Enrollment, Relay, Staff, Boot, Public })
            {
                int perSource = limits.For(policy).PerSource;
                o.AddPolicy(policy, http => perSource <= 0
                    ? RateLimitPartition.GetNoLimiter("")
                    : RateLimitPartition.GetTokenBucketLimiter(SourceKey(http), _ => Bucket(perSource)));
            }
            o.GlobalLimiter = PartitionedRateLimiter.Create<HttpContext, (string Policy, string Credential)>(http =>
            {
                string? policy = http.GetEndpoint()?.Metadata.GetMetadata<EnableRateLimitingAttribute>()?.PolicyName;
                string? credential = http.Request.Headers.Authorization;
                int perCredential = policy is null || policy == Login ? 0 : limits.For(policy).PerCredential;
                return perCredential <= 0 || string.IsNullOrEmpty(credential)
                    ? RateLimitPartition.GetNoLimiter((policy ?? "", ""))
                    : RateLimitPartition.GetTokenBucketLimiter((policy!, CredentialKey(credential)), _ => Bucket(perCredential));
            });
        });
    }

    /// <summary>A minute's worth of permits, refilled continuously; no queue (a refusal is immediate).</summary>
    internal static TokenBucketRateLimiterOptions Bucket(int perMinute) => new()
    {
        TokenLimit = perMinute, TokensPerPeriod = perMinute, ReplenishmentPeriod = TimeSpan.FromMinutes(1), QueueLimit = 0,
        AutoReplenishment = true,
    };

    /// <summary>An IPv4 address, or an IPv6 address's /64 (one subscriber's usual allocation); IPv4-mapped counts as IPv4.</summary>
    public static string SourceKey(HttpContext http) => SourceKey(http.Connection.RemoteIpAddress);

    public static string SourceKey(IPAddress? address)
    {
        if (address is null) return "";
        if (address.IsIPv4MappedToIPv6) address = address.MapToIPv4();
        if (address.AddressFamily != AddressFamily.InterNetworkV6) return address.ToString();
        Span<byte> bytes = stackalloc byte[16];
        address.TryWriteBytes(bytes, out _);
        bytes[8..].Clear();
        return new IPAddress(bytes).ToString() + "/64";
    }

    /// <summary>A fixed-size key for a credential of any length (the header is bounded only by Kestrel's header limit).</summary>
    private static string CredentialKey(string credential) => Convert.ToBase64String(SHA256.HashData(Encoding.UTF8.GetBytes(credential)));
}

/// <summary>
/// Login attempts, in memory on each instance, before the database is asked: a budget of attempts per username (the credential
/// of a login is in its body, which the rate limiter does not read), and the backoff per source address (issue 17): past
/// <see cref="FleetLimits.LoginFreeFailuresPerSource"/> failed logins from one address, each failure doubles the wait before
/// the next attempt from it. An attempt counts as failed from its start (so concurrent attempts cannot share one wait) until
/// <see cref="Succeeded"/>. The backoff per username is the database's (<see cref="Core.StaffService.LoginAsync"/>), so it holds
/// on every instance; addresses stay out of the database, as everywhere in the rate limiter. Bounded: idle buckets are dropped,
/// and addresses quiet for <see cref="FleetLimits.LoginSourceMemory"/> forgotten.
/// </summary>
public sealed class LoginThrottle(int perMinute, bool backoff, TimeProvider time) : IDisposable
{
    private readonly PartitionedRateLimiter<string> limiter = PartitionedRateLimiter.Create<string, string>(username => perMinute <= 0
        ? RateLimitPartition.GetNoLimiter("")
        : RateLimitPartition.GetTokenBucketLimiter(username, _ => RateLimits.Bucket(perMinute)));
    private readonly Dictionary<string, SourceFailures> sources = [];
    private long forgotAt;

    private sealed class SourceFailures
    {
        public long Failures, LastFailedAt, NextAttemptAt;
    }

    /// <summary>Throws 429 with Retry-After when this username has used its budget or this source must wait; else counts the attempt.</summary>
    public void Attempt(string username, string source)
    {
        using (var lease = limiter.AttemptAcquire(Core.LoginBackoff.Key(username)))
            if (!lease.IsAcquired)
                throw new FleetException(FleetError.RateLimited, "too many login attempts for this user; retry later")
                {
                    RetryAfter = lease.TryGetMetadata(MetadataName.RetryAfter, out TimeSpan retry) ? retry : TimeSpan.FromMinutes(1),
                };
        if (!backoff) return;
        long now = time.GetUtcNow().ToUnixTimeMilliseconds();
        lock (sources)
        {
            if (!sources.TryGetValue(source, out var f))
            {
                if (sources.Count >= FleetLimits.MaxTrackedLoginSources && now - forgotAt >= 60_000) Forget(now);   // one sweep a minute at most
                if (sources.Count >= FleetLimits.MaxTrackedLoginSources) return;   // the per-username backoff and budgets still hold
                sources[source] = f = new SourceFailures();
            }
            if (now - f.LastFailedAt > (long)FleetLimits.LoginSourceMemory.TotalMilliseconds) f.Failures = f.NextAttemptAt = 0;
            if (now < f.NextAttemptAt) throw Core.LoginBackoff.TooManyFailures(TimeSpan.FromMilliseconds(f.NextAttemptAt - now));
            f.Failures++;
            f.LastFailedAt = now;
            f.NextAttemptAt = now + (long)Core.LoginBackoff.Delay(f.Failures, FleetLimits.LoginFreeFailuresPerSource).TotalMilliseconds;
        }
    }

    /// <summary>The attempt <see cref="Attempt"/> counted from <paramref name="source"/> succeeded: it is no failure (its wait stays).</summary>
    public void Succeeded(string source)
    {
        lock (sources)
            if (sources.TryGetValue(source, out var f) && f.Failures > 0) f.Failures--;
    }

    private void Forget(long now)
    {
        forgotAt = now;
        long memory = (long)FleetLimits.LoginSourceMemory.TotalMilliseconds;
        foreach (var (key, f) in sources)
            if (now - f.LastFailedAt > memory && now >= f.NextAttemptAt) sources.Remove(key);
    }

    public void Dispose() => limiter.Dispose();
}
