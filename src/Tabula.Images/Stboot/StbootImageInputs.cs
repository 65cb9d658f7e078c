namespace Tabula.Images.Stboot;

/// <summary>What an stboot initramfs is built from.</summary>
/// <param name="Init">The static tabula-boot binary, installed as /init.</param>
/// <param name="TrustPolicyDirectory">An ST trust policy folder, copied to /etc/trust_policy (validated first).</param>
/// <param name="HostConfigFile">host_configuration.json for /etc (validated first); null: the machine's STHostConfig EFI variable is used.</param>
/// <param name="KernelRelease">The kernel release whose modules go in (uname -r of the stboot kernel).</param>
/// <param name="Modules">Module names; their closure from modules.dep goes in, with the load order.</param>
public sealed record StbootImageInputs(string Init, string TrustPolicyDirectory, string? HostConfigFile, string KernelRelease,
    IReadOnlyList<string> Modules)
{
    /// <summary>Where module trees live (one folder per release).</summary>
    public string ModulesRoot { get; init; } = "/lib/modules";

    /// <summary>OS packages for the initramfs fetch method: descriptor paths (NAME.json, with NAME.zip beside it), copied to /ospkg/.</summary>
    public IReadOnlyList<string> EmbeddedPackages { get; init; } = [];
}

/// <summary>What went into an image, for the CLI to print.</summary>
public sealed record StbootImageSummary(long InitBytes, IReadOnlyList<string> ModuleLoadOrder, IReadOnlyList<string> Paths);
