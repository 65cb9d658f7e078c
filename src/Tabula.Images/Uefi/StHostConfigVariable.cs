namespace Tabula.Images.Uefi;

/// <summary>
/// The EFI variable stboot reads its host configuration from when its image holds no /etc/host_configuration.json:
/// System Transparency's <c>STHostConfig-f401f2c1-b005-4be0-8cee-f2e5945bcbe7</c>, non-volatile, boot and runtime access
/// (the OS reads it through efivarfs). The one declaration of its name and vendor on the writing side (the CLI's
/// `hostconfig efivar`, the lab's relays, the tests); stboot, the reader, is Tabula.Boot's LoadConfiguration.
/// </summary>
public static class StHostConfigVariable
{
    /// <summary>The variable's name.</summary>
    public const string Name = "STHostConfig";

    /// <summary>System Transparency's vendor GUID.</summary>
    public static readonly Guid Vendor = new("f401f2c1-b005-4be0-8cee-f2e5945bcbe7");

    /// <summary>NAME-GUID, as efivarfs and the documentation spell it.</summary>
    public static string FullName => $"{Name}-{Vendor:D}";

    /// <summary>The variable holding <paramref name="hostConfigJson"/> (bytes as they are: the writer does not judge them).</summary>
    public static FirmwareVariable With(byte[] hostConfigJson) =>
        new(Name, Vendor, FirmwareVariable.NonVolatileRuntime, hostConfigJson ?? throw new ArgumentNullException(nameof(hostConfigJson)));
}
