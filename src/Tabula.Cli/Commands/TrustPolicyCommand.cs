using System.CommandLine;

namespace Tabula.Cli.Commands;

/// <summary>`tabula trustpolicy …`: create and check ST trust policy folders.</summary>
internal static class TrustPolicyCommand
{
    public static Command Create() => new("trustpolicy",
        "Trust policies: what stboot requires of an OS package (a folder: trust_policy.json, ospkg_signing_root.pem, [tls_roots.pem]).")
    {
        TrustPolicyCreateCommand.Create(),
        TrustPolicyCheckCommand.Create(),
    };
}
