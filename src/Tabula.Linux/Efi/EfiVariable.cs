namespace Tabula.Linux.Efi;

/// <summary>One EFI variable as efivarfs shows it: attributes, then the data.</summary>
public sealed record EfiVariable(string Name, Guid Vendor, EfiVariableAttributes Attributes, byte[] Data);
