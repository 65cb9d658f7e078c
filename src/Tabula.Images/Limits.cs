namespace Tabula.Images;

/// <summary>Every bound the image builders apply, with where it comes from.</summary>
public static class Limits
{
    /// <summary>Largest modules.dep read. Debian 12's has about 4,000 lines and 300 KiB. Arbitrary limit, may be increased.</summary>
    public const int MaxModulesDepBytes = 16 * 1024 * 1024;

    /// <summary>Largest decompressed module accepted (the biggest Debian 12 modules are a few MiB). Arbitrary limit, may be increased.</summary>
    public const int MaxModuleBytes = 64 * 1024 * 1024;
}
