namespace Tabula.Provisioning.Http;

/// <summary>Names of the rate-limiting and timeout policies.</summary>
public static class ServerPolicies
{
    public const string Machines = "machines";
    public const string Staff = "staff";
}
