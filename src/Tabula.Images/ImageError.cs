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
    /// <summary>A PE/COFF image (the EFI stub, a UKI) is not what its headers say: a section outside the file, overlapping
    /// sections, a wrong magic, or no room for more sections.</summary>
    PeMalformed,
    /// <summary>A UKI section is missing, empty, or not what it must hold (a kernel without a bzImage setup header).</summary>
    UkiSectionInvalid,
    /// <summary>An external build tool (xorriso, mtools, sbsign) is missing or failed.</summary>
    ToolFailed,
    /// <summary>An OVMF variable store (VARS.fd) is not one: firmware volume header, store header or a variable malformed.</summary>
    VariableStoreMalformed,
}
