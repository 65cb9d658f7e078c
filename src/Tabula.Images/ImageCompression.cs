namespace Tabula.Images;

/// <summary>How an initramfs image is written.</summary>
public enum ImageCompression
{
    /// <summary>gzip-compressed newc archive (every kernel with CONFIG_RD_GZIP; the default).</summary>
    Gzip,

    /// <summary>The plain newc archive: about twice the size, unpacked by the kernel with copies only.</summary>
    None,
}
