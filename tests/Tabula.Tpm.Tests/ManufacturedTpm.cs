using System.Security.Cryptography;
using Tabula.Qemu;
using Tabula.Testing;

namespace Tabula.Tpm.Tests;

/// <summary>
/// One TPM made as a vendor makes it (Tabula.Qemu's <c>Swtpm.Manufacture</c>: swtpm_setup with RSA and ECC EK
/// certificates from a lab manufacturer CA), started on loopback for the test class. Made on first use, so a class
/// whose tests are all skipped starts nothing.
/// </summary>
public sealed class ManufacturedTpm : IDisposable
{
    readonly string dir = Directory.CreateTempSubdirectory("tabula-tpm-made-").FullName;
    readonly Lazy<(TpmManufacturer Manufacturer, Swtpm Swtpm)> made;

    public ManufacturedTpm()
    {
        made = new(() =>
        {
            var manufacturer = TpmManufacturer.OpenOrCreate(Path.Combine(dir, "ca"));
            string state = Path.Combine(dir, "state");
            Swtpm.Manufacture(state, manufacturer);
            return (manufacturer, Swtpm.StartServer(state, Path.Combine(dir, "swtpm.log")));
        });
    }

    public TpmManufacturer Manufacturer => made.Value.Manufacturer;

    public Swtpm Swtpm => made.Value.Swtpm;

    public string Scratch(string name) => Path.Combine(dir, name);

    public void Dispose()
    {
        if (made.IsValueCreated)
            made.Value.Swtpm.Dispose();
        Directory.Delete(dir, recursive: true);
    }

    /// <summary>Random bytes as lowercase hex, for names of scratch files.</summary>
    public static string Nonce() => RandomNumberGenerator.GetHexString(8, lowercase: true);
}
