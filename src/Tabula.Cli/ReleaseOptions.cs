using System.CommandLine;
using Tabula.Packaging;

namespace Tabula.Cli;

/// <summary>
/// --release N and --machine-class C, shared by `ospkg create` and `image relay`: what goes into the manifest's
/// <c>tabula</c> object (freshness design §1). Both optional; without them the manifest is stmgr's, byte for byte.
/// </summary>
internal sealed class ReleaseOptions
{
    readonly Option<long?> release = new("--release")
    {
        Description = $"Release number of this package (1-{Releases.MaxRelease}); only ever goes up. stboot's freshness floors " +
                      "(trust policy min_release, the controller's ticket) refuse packages below them",
    };
    readonly Option<string?> machineClass = new("--machine-class")
    {
        Description = "Machine class this package is for (1-64 characters of a-z, 0-9, -), e.g. relay; stboot refuses a package " +
                      "of another class than its trust policy's and its ticket's",
    };

    /// <summary>The options, to add to a command.</summary>
    public IEnumerable<Option> Options => [release, machineClass];

    /// <summary>(release, class) from the options: 0 and null when not given; refuses values out of range.</summary>
    public (long Release, string? MachineClass) Resolve(ParseResult result)
    {
        long value = result.GetValue(release) ?? 0;
        if (result.GetValue(release) is not null && !Releases.IsValidRelease(value))
            throw new UsageException($"--release must be 1-{Releases.MaxRelease}, got {value}");
        string? name = result.GetValue(machineClass);
        if (name is not null && !Releases.IsValidMachineClass(name))
            throw new UsageException($"--machine-class must be 1-{Releases.MaxMachineClassLength} characters of a-z, 0-9 and -, got \"{name}\"");
        return (value, name);
    }
}
