namespace Tabula.Machine.Modules;

/// <summary>What is wrong with a module index (modules.dep, modules.alias) or a device's modalias.</summary>
public enum ModuleIndexError
{
    /// <summary>The text is over its size limit, or has too many lines, modules or devices.</summary>
    TooLarge,
    /// <summary>A line is longer than <see cref="MachineLimits.MaxModuleIndexLineBytes"/>.</summary>
    LineTooLong,
    /// <summary>The text is not UTF-8, or contains a NUL or control character.</summary>
    NotText,
    /// <summary>A modules.dep line without "module:", or an empty or repeated module.</summary>
    DependencyMalformed,
    /// <summary>A modules.alias line that is not "alias PATTERN MODULE", or a pattern with an unclosed '['.</summary>
    AliasMalformed,
    /// <summary>A modalias that is empty, has no "bus:" prefix, or contains a glob character or white space.</summary>
    ModaliasMalformed,
    /// <summary>A module named (or depended on) that modules.dep does not list.</summary>
    ModuleNotFound,
    /// <summary>modules.dep makes a module depend on itself.</summary>
    DependencyCycle,
}

/// <summary>A module index or modalias that cannot be used; the message names the line.</summary>
public sealed class ModuleIndexException(ModuleIndexError reason, string detail) : Exception(detail)
{
    /// <summary>What is wrong.</summary>
    public ModuleIndexError Reason { get; } = reason;

    internal static void Throw(ModuleIndexError reason, string detail) => throw new ModuleIndexException(reason, detail);
}
