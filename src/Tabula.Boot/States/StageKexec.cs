using System.Diagnostics;
using System.IO.Compression;
using Microsoft.Win32.SafeHandles;
using Tabula.Linux;
using Tabula.Packaging;

namespace Tabula.Boot.States;

/// <summary>
/// From the verified archive (the same memfd that was hashed: no second read from the network, threat checklist #17):
/// 1. open it with Tabula.Packaging (manifest, names, sizes, CRCs);
/// 2. kernel → memfd (gunzipped if gzip-compressed, as upstream);
/// 3. initramfs → memfd, bytes untouched, then 0-3 zero bytes and the hand-over cpio (<see cref="HandoverRecord"/>);
/// 4. reopen both read-only, close the writers (kexec_file_load refuses an inode with a writer: ETXTBSY);
/// 5. kexec_load with stboot's own layout, or kexec_file_load (<see cref="Seams.LinuxKexec"/>; which one:
/// <see cref="Kexec.KexecChoice"/>, from --kexec and the platform's Secure Boot and lockdown), with the manifest's
/// command line exactly. The hand-over carries the platform (firmware, Secure Boot, lockdown) to the OS.
/// </summary>
internal sealed class StageKexec(FetchedPackage package) : BootState
{
    public override string Name => "kexec-load";

    public override Transition Run(BootContext context)
    {
        var clock = Stopwatch.StartNew();
        var configuration = context.Configuration!;
        SafeFileHandle? kernel = null, initramfs = null;
        try
        {
            string cmdline;
            long kernelBytes, initramfsBytes;
            using (package)
            using (var archive = OsPackageArchive.Open(new HandleStream(package.Archive)))
            {
                cmdline = archive.Manifest.Cmdline;
                using (SafeFileHandle writable = MemoryFile.Create("kernel"))
                {
                    using (var stream = new HandleStream(writable))
                    {
                        archive.ExtractKernel(stream);
                        kernelBytes = stream.Length;
                    }
                    kernel = IsGzip(writable) ? Gunzip(writable, out kernelBytes) : MemoryFile.ReopenReadOnly(writable);
                }
                using (SafeFileHandle writable = MemoryFile.Create("initramfs"))
                {
                    using var stream = new HandleStream(writable);
                    archive.ExtractInitramfs(stream);
                    var handover = new HandoverRecord(package.Sha256, package.Source,
                        package.Source == FetchMethod.Network ? package.DescriptorUrl : null, configuration.HostConfigSource, configuration.HostConfigJson)
                    {
                        Freshness = context.Freshness,
                        Measurement = context.Measurement,
                        Platform = context.Platform,
                    };
                    initramfsBytes = handover.AppendTo(stream);
                    initramfs = MemoryFile.ReopenReadOnly(writable);
                }
            }
            TimeSpan extracted = clock.Elapsed;
            string method = context.Environment.Kexec.Load(kernel, initramfs, cmdline, Kexec.KexecChoice.For(context.Options.KexecMethod, context.Platform));
            context.Log.Kexec(cmdline, kernelBytes, initramfsBytes);
            context.Log.StageDone(Name, clock.Elapsed,
                $"extract={(long)extracted.TotalMilliseconds}ms load={(long)(clock.Elapsed - extracted).TotalMilliseconds}ms method=\"{method}\" ospkg_sha256={package.Sha256.Hex}");
            return Transition.To(new HandOver(package.Sha256.Hex, cmdline));
        }
        catch (PackageFormatException e)
        {
            return Transition.To(new Recover(new BootFailure(Name, FailureReason.ArchiveInvalid, e.Message, package.DescriptorUrl), new FetchPackage(0)));
        }
        catch (Exception e) when (e is LinuxException or IOException or InvalidDataException or ArgumentException)
        {
            return Transition.To(new Recover(new BootFailure(Name, FailureReason.KexecFailed, e.Message, package.DescriptorUrl), new FetchPackage(0)));
        }
        finally
        {
            kernel?.Dispose();
            initramfs?.Dispose();
        }
    }

    static bool IsGzip(SafeFileHandle file)
    {
        Span<byte> magic = stackalloc byte[2];
        return RandomAccess.Read(file, magic, 0) == 2 && magic[0] == 0x1F && magic[1] == 0x8B;
    }

    static SafeFileHandle Gunzip(SafeFileHandle compressed, out long length)
    {
        using SafeFileHandle writable = MemoryFile.Create("kernel-gunzipped");
        using (var source = new GZipStream(new HandleStream(compressed), CompressionMode.Decompress))
        using (var destination = new HandleStream(writable))
        {
            byte[] buffer = new byte[1 << 20];
            long total = 0;
            int n;
            while ((n = source.Read(buffer)) > 0)
            {
                total += n;
                if (total > Packaging.Limits.MaxEntryBytes)
                    throw new InvalidDataException($"the gzip-compressed kernel expands past {Packaging.Limits.MaxEntryBytes} bytes");
                destination.Write(buffer, 0, n);
            }
            length = total;
        }
        return MemoryFile.ReopenReadOnly(writable);
    }
}
