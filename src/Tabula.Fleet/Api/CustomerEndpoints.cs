using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Tabula.Fleet.Core;

namespace Tabula.Fleet.Api;

/// <summary>
/// /app/v1: what customers' apps call (account number as credential; nothing here is logged or audited),
/// and /api/v1/customers: what staff may do with accounts (audited, without the account number).
/// The number is in a response only once, when the account is created (the store keeps its HMAC); afterwards an account
/// shows its id (<see cref="Account.PublicId"/>), by which staff may also name it.
/// </summary>
public static class CustomerEndpoints
{
    public static void MapCustomers(this IEndpointRouteBuilder app)
    {
        var customer = app.MapGroup("/app/v1").RequireRateLimiting(RateLimits.Customer);
        // Gated by the operator's AccountCreation: a staff voucher by default, or a proof of work, or (explicitly) nothing.
        customer.MapPost("/accounts", async (SelfServiceAccountRequest? body, HttpContext http, CustomerService customers) =>
        {
            var account = await customers.CreateSelfServiceAccountAsync(body?.Voucher, Hex(body?.Challenge, ProofOfWork.ChallengeBytes),
                Hex(body?.Nonce, ProofOfWork.MaxNonceBytes), http.RequestAborted);
            return TypedResults.Created("/app/v1/me", View(account.Account, account.Number));
        }).RequireRateLimiting(RateLimits.Accounts);
        customer.MapPost("/accounts/challenge", async (HttpContext http, CustomerService customers) =>
        {
            var (challenge, bits, expires) = await customers.NewAccountChallengeAsync(http.RequestAborted);
            return TypedResults.Ok(new AccountChallengeView(Convert.ToHexStringLower(challenge), bits, expires));
        }).RequireRateLimiting(RateLimits.Accounts);
        customer.MapGet("/me", async (HttpContext http, CustomerService customers) => TypedResults.Ok(View(await customers.GetAccountAsync(Auth.Account(http), http.RequestAborted))));
        customer.MapGet("/devices", async (HttpContext http, CustomerService customers) =>
            TypedResults.Ok((await customers.ListDevicesAsync(Auth.Account(http), http.RequestAborted)).Select(DeviceView.From).ToList()));
        customer.MapPost("/devices", async (AddDeviceRequest body, HttpContext http, CustomerService customers) =>
        {
            var key = KeyInput.Parse(body.PublicKey, "public_key");
            var device = await customers.AddDeviceAsync(Auth.Account(http), key, http.RequestAborted);
            return TypedResults.Created($"/app/v1/devices/{device.Id}", DeviceView.From(device));
        });
        customer.MapDelete("/devices/{id:long}", async (long id, HttpContext http, CustomerService customers) =>
            TypedResults.Ok(new RevisionResponse(await customers.RemoveDeviceAsync(Auth.Account(http), id, http.RequestAborted))));
        // How far a change has spread: aggregate counts only, so customers may ask too.
        customer.MapGet("/revisions/{revision:long}/applied", async (long revision, HttpContext http, MachineService machines, CustomerService customers) =>
        {
            await customers.GetAccountAsync(Auth.Account(http), http.RequestAborted);
            var (head, deployed, applied) = await machines.AppliedAsync(revision, http.RequestAborted);
            return TypedResults.Ok(new AppliedView(revision, head, deployed, applied));
        });

        var staff = app.MapGroup("/api/v1/customers").RequireRateLimiting(RateLimits.Staff);
        staff.MapPost("/", async (CreateAccountRequest? body, HttpContext http, StaffService staffService, CustomerService customers) =>
        {
            var me = await Auth.StaffAsync(http, staffService, StaffRole.Operator);
            var created = await customers.CreateAccountAsync(me.Username, body?.DeviceLimit, http.RequestAborted);
            return TypedResults.Created("/api/v1/customers/" + created.Account.PublicId, View(created.Account, created.Number));
        });
        // {account}: the account number (a customer read it out) or the account id.
        staff.MapGet("/{account}", async (string account, HttpContext http, StaffService staffService, CustomerService customers) =>
        {
            await Auth.StaffAsync(http, staffService, StaffRole.Viewer);
            return TypedResults.Ok(View(await customers.FindForStaffAsync(account, http.RequestAborted)));
        });
        staff.MapGet("/{account}/devices", async (string account, HttpContext http, StaffService staffService, CustomerService customers) =>
        {
            await Auth.StaffAsync(http, staffService, StaffRole.Viewer);
            var found = await customers.FindForStaffAsync(account, http.RequestAborted);
            return TypedResults.Ok((await customers.ListDevicesAsync(found, http.RequestAborted)).Select(DeviceView.From).ToList());
        });
        staff.MapDelete("/{account}", async (string account, HttpContext http, StaffService staffService, CustomerService customers) =>
        {
            var me = await Auth.StaffAsync(http, staffService, StaffRole.Operator);
            var found = await customers.FindForStaffAsync(account, http.RequestAborted);
            return TypedResults.Ok(new RevisionResponse(await customers.DeleteAccountAsync(me, found, null, http.RequestAborted)));
        });
    }

    /// <summary>Hex of at most <paramref name="maxBytes"/> bytes, or null when absent or not that.</summary>
    private static byte[]? Hex(string? text, int maxBytes)
    {
        if (string.IsNullOrEmpty(text) || text.Length > 2 * maxBytes) return null;
        try { return Convert.FromHexString(text); }
        catch (FormatException) { return null; }
    }

    private static AccountView View(Account a, string? number = null) =>
        new(a.PublicId, a.DeviceLimit, DateTimeOffset.FromUnixTimeMilliseconds(a.CreatedAt), number);
}
