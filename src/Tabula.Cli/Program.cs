using System.CommandLine;
using Tabula.Cli.Commands;

// The `tabula` command. Each verb lives in Commands/ and exposes Create(); this file only composes them.
var root = new RootCommand("Tabula: disk-less fleets that boot a signed OS into RAM.")
{
    PublishCommand.Create(),
    ProvisioningCommands.Create(),
};
return await root.Parse(args).InvokeAsync();
