namespace Tabula.Linux.Efi;

/// <summary>UEFI variable attributes, the first 4 bytes (little-endian) of every efivarfs file.</summary>
[Flags]
public enum EfiVariableAttributes : uint
{
    /// <summary>No attributes.</summary>
    None = 0,
    /// <summary>EFI_VARIABLE_NON_VOLATILE.</summary>
    NonVolatile = 0x1,
    /// <summary>EFI_VARIABLE_BOOTSERVICE_ACCESS.</summary>
    BootServiceAccess = 0x2,
    /// <summary>EFI_VARIABLE_RUNTIME_ACCESS.</summary>
    RuntimeAccess = 0x4,
    /// <summary>EFI_VARIABLE_HARDWARE_ERROR_RECORD.</summary>
    HardwareErrorRecord = 0x8,
    /// <summary>EFI_VARIABLE_TIME_BASED_AUTHENTICATED_WRITE_ACCESS.</summary>
    TimeBasedAuthenticatedWriteAccess = 0x20,
    /// <summary>EFI_VARIABLE_APPEND_WRITE.</summary>
    AppendWrite = 0x40,
}
