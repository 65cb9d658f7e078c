namespace Tabula.Images.Uefi;

/// <summary>
/// The hybrid stboot ISO (System Transparency ships the same): an EFI System Partition (FAT) holding the UKI as
/// EFI/BOOT/BOOTX64.EFI, the removable-media path every UEFI firmware tries, reachable two ways: as the El Torito
/// no-emulation UEFI boot image of the ISO 9660 volume (CD, a BMC's virtual media) and as partition 2 of a GPT (the
/// same file written to a USB stick). The FAT image is stored once: El Torito points into the appended partition.
///
/// Built with Debian's mtools (FAT) and xorriso (ISO 9660, El Torito, GPT, protective MBR) rather than written by
/// us: three on-disk formats whose corner cases (FAT sizing, El Torito catalogs, GPT backup headers, hybrid MBR) these
/// tools have handled for decades, where ours would be new code with no firmware behind its tests but OVMF. Both
/// are made deterministic: a fixed volume serial and label, SOURCE_DATE_EPOCH for every date (FAT entries, ISO
/// volume dates, and the GPT and ISO UUIDs xorriso derives from it), TZ=UTC; building twice gives the same bytes.
/// </summary>
public static class IsoImage
{
    /// <summary>The ISO 9660 volume id and FAT label.</summary>
    public const string VolumeId = "STBOOT";

    /// <summary>Path of the UKI inside the ESP (UEFI 2.10 §3.5.1.1, removable media, x64).</summary>
    public const string BootPath = "EFI/BOOT/BOOTX64.EFI";

    /// <summary>The FAT volume serial (fixed, so the image is reproducible): "TABU".</summary>
    const string VolumeSerial = "54414255";

    /// <summary>Writes the ISO for <paramref name="uki"/> to <paramref name="output"/>. The UKI is read back first, so a
    /// corrupted one is refused here, not by the firmware.</summary>
    public static void Write(byte[] uki, string output)
    {
        ArgumentNullException.ThrowIfNull(uki);
        UkiImage.Read(uki);
        string work = Directory.CreateTempSubdirectory("tabula-iso-").FullName;
        try
        {
            string efi = Path.Combine(work, "uki.efi");
            File.WriteAllBytes(efi, uki);
            string esp = Path.Combine(work, "esp.img");
            // FAT16 with 1 KiB clusters: room for the UKI, its directories and 1 MiB, in whole MiB (32 sectors x 64 heads).
            long sectors = ((uki.Length + (2L << 20)) >> 20) << 11;
            using (var file = File.Create(esp))
                file.SetLength(sectors * 512);
            BuildTool.Run("mformat", "mtools", "-i", esp, "-N", VolumeSerial, "-v", VolumeId, "-T", sectors.ToString(System.Globalization.CultureInfo.InvariantCulture), "-h", "64", "-s", "32", "::");
            BuildTool.Run("mmd", "mtools", "-i", esp, "::/EFI", "::/EFI/BOOT");
            BuildTool.Run("mcopy", "mtools", "-i", esp, efi, "::/" + BootPath);
            string root = Directory.CreateDirectory(Path.Combine(work, "root")).FullName;
            // xorriso dates the files it adds by their mtimes (SOURCE_DATE_EPOCH fixes only the volume's own dates).
            var epoch = DateTimeOffset.FromUnixTimeSeconds(BuildTool.SourceDateEpoch).UtcDateTime;
            foreach (string path in new[] { esp, efi })
                File.SetLastWriteTimeUtc(path, epoch);
            Directory.SetLastWriteTimeUtc(root, epoch);
            string iso = Path.Combine(work, "stboot.iso");
            BuildTool.Run("xorriso", "xorriso", "-no_rc", "-as", "mkisofs", "-o", iso, "-V", VolumeId, "-iso-level", "3", "-r",
                "-append_partition", "2", "0xef", esp, "-appended_part_as_gpt",
                "-e", "--interval:appended_partition_2:all::", "-no-emul-boot", root);
            File.Move(iso, output, overwrite: true);
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }
}
