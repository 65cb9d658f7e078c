namespace Tabula.Images;

/// <summary>Why an image could not be built from its inputs.</summary>
public enum ImageError
{
    /// <summary>An archive path is empty, absolute after normalisation, or has "." or ".." components.</summary>
    CpioPathInvalid,
    /// <summary>Two entries have the same path, or a file sits where a directory is implied.</summary>
    CpioPathConflict,
    /// <summary>A path is longer than <see cref="Limits.MaxCpioPathBytes"/>.</summary>
    CpioPathTooLong,
    /// <summary>A file is larger than newc's 32-bit size field allows.</summary>
    CpioFileTooLarge,
    /// <summary>A modules.dep line has no colon or an empty module path.</summary>
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
