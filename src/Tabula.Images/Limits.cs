namespace Tabula.Images;

/// <summary>Every bound the image builders apply, with where it comes from.</summary>
public static class Limits
{
    // modules.dep and modules.alias are read with the machine layer's limits (Tabula.Machine.MachineLimits).

    /// <summary>Largest decompressed module accepted (the biggest Debian 12 modules are a few MiB). Arbitrary limit, may be increased.</summary>
    public const int MaxModuleBytes = 64 * 1024 * 1024;
}
