namespace Tabula.Images;

/// <summary>Why an image could not be built from its inputs.</summary>
public enum ImageError
{
    /// <summary>modules.dep or modules.alias cannot be read (a line without "module:" or "alias PATTERN MODULE", over a limit, not text).</summary>
    ModulesDepMalformed,
    /// <summary>A requested module, or a dependency listed for one, is not in modules.dep.</summary>
    ModuleNotFound,
    /// <summary>modules.dep describes a dependency cycle.</summary>
    ModuleDependencyCycle,
    /// <summary>A compressed module could not be decompressed.</summary>
    ModuleDecompressionFailed,
    /// <summary>An input of an image (the /init binary, a trust policy, a host configuration, an OS package) is missing or invalid.</summary>
    InputInvalid,
}
