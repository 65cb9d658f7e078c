using System.Buffers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Tabula.Linux;
using Tabula.Provisioning.Core;
using Tabula.Packaging;

namespace Tabula.Provisioning.Storage;

/// <summary>
/// The embedded default store: plain files under one root, no database.
/// <code>
/// sha256/&lt;hex&gt;            immutable objects (archives, descriptors), named by the SHA-256 of their bytes
/// packages/&lt;hex&gt;.json     one record per accepted package, keyed by archive digest
/// channels/&lt;name&gt;.json    where each channel points
/// groups/&lt;id&gt;.json        machine groups (selector, channel, host configuration), written by the operator
/// audit.jsonl             staff actions, one JSON object per line, appended and fsynced
/// tokens.json             staff token hashes
/// tmp/                    staging; emptied at start, so a crash mid-upload leaves nothing behind
/// </code>
/// Every write goes to tmp/, is fsynced, renamed into place and the directory fsynced: after a crash each file
/// holds either its old or its new bytes. Publishing writes objects first and the channel pointer last.
/// Paths are built only from validated names and digests (<see cref="Names"/>, <see cref="Sha256Digest"/>).
/// </summary>
public sealed class FileStore : IStore
{
    readonly string root, objects, packages, channels, groups, tmp, auditPath, tokensPath, tokenUsesPath;
    readonly SemaphoreSlim writeLock = new(1, 1);
    readonly int maxGroupFileBytes;
    (DateTime Stamp, IReadOnlyList<MachineGroup> Groups)? groupCache;

    public FileStore(string root, int maxGroupFileBytes = 64 * 1024)
    {
        this.root = Path.GetFullPath(root);
        this.maxGroupFileBytes = maxGroupFileBytes;
        objects = Path.Combine(this.root, "sha256");
        packages = Path.Combine(this.root, "packages");
        channels = Path.Combine(this.root, "channels");
        groups = Path.Combine(this.root, "groups");
        tmp = Path.Combine(this.root, "tmp");
        auditPath = Path.Combine(this.root, "audit.jsonl");
        tokensPath = Path.Combine(this.root, "tokens.json");
        tokenUsesPath = Path.Combine(this.root, "token-uses.json");
        try
        {
            foreach (string dir in (string[])[this.root, objects, packages, channels, groups, tmp])
                Directory.CreateDirectory(dir);
            // Whatever is in staging was never committed: an upload cut short by a crash or a kill.
            foreach (string leftover in Directory.EnumerateFiles(tmp))
                File.Delete(leftover);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw StoreFailed($"cannot open store at {this.root}", e);
        }
    }

    public string Root => root;

    public async Task<StagedObject> StageAsync(Stream content, long maxBytes, CancellationToken ct)
    {
        string path = Path.Combine(tmp, $"{Guid.NewGuid():N}.part");
        byte[] buffer = ArrayPool<byte>.Shared.Rent(ProvisioningLimits.CopyBufferBytes);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        long length = 0;
        bool ok = false;
        try
        {
            FileStream file;
            try
            {
                file = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 0,
                    FileOptions.Asynchronous);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw StoreFailed("cannot create staging file", e);
            }
            await using (file)
            {
                int read;
                // Reads from the client may fail (reset, too slow): those propagate as they are. Only local
                // write failures are store failures.
                while ((read = await content.ReadAsync(buffer, ct)) > 0)
                {
                    length += read;
                    if (length > maxBytes)
                        throw new ProvisioningException(ProvisioningError.TooLarge,
                            $"archive exceeds the limit of {maxBytes} bytes");
                    hash.AppendData(buffer, 0, read);
                    try
                    {
                        await file.WriteAsync(buffer.AsMemory(0, read), ct);
                    }
                    catch (IOException e)
                    {
                        throw StoreFailed("cannot write staging file", e);
                    }
                }
                try
                {
                    file.Flush(flushToDisk: true);
                }
                catch (IOException e)
                {
                    throw StoreFailed("cannot fsync staging file", e);
                }
            }
            ok = true;
            return new StagedObject(path, Sha256Digest.FromBytes(hash.GetHashAndReset()), length);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
            if (!ok)
                TryDelete(path);
        }
    }

    public Task<StoredObject> CommitAsync(StagedObject staged, CancellationToken ct)
    {
        string target = ObjectPath(staged.Digest);
        try
        {
            if (File.Exists(target))
            {
                staged.Dispose();
            }
            else
            {
                MakeReadOnly(staged.StagingPath);
                File.Move(staged.StagingPath, target, overwrite: true);
                SyncDirectory(objects);
            }
            staged.Committed = true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or LinuxException)
        {
            throw StoreFailed("cannot commit object", e);
        }
        return Task.FromResult(FindObject(staged.Digest) ?? throw StoreFailed("object vanished after commit", null));
    }

    public async Task<StoredObject> PutAsync(ReadOnlyMemory<byte> bytes, CancellationToken ct)
    {
        var digest = Sha256Digest.Of(bytes.Span);
        if (FindObject(digest) is { } existing)
            return existing;
        await WriteAtomicAsync(ObjectPath(digest), bytes, ct);
        return FindObject(digest) ?? throw StoreFailed("object vanished after write", null);
    }

    public StoredObject? FindObject(Sha256Digest digest)
    {
        var info = new FileInfo(ObjectPath(digest));
        return info.Exists ? new StoredObject(digest, info.FullName, info.Length, info.LastWriteTimeUtc) : null;
    }

    public Task<PackageRecord?> FindPackageAsync(Sha256Digest archive, CancellationToken ct) =>
        ReadRecordAsync(Path.Combine(packages, archive.Hex + ".json"), ProvisioningJsonContext.Default.PackageRecord, ct);

    public async Task PutPackageAsync(PackageRecord package, CancellationToken ct)
    {
        if (!Sha256Digest.TryParse(package.ArchiveSha256, out var digest))
            throw new ArgumentException("archive digest is not 64 hex digits", nameof(package));
        await WriteAtomicAsync(Path.Combine(packages, digest.Hex + ".json"),
            JsonSerializer.SerializeToUtf8Bytes(package, ProvisioningJsonContext.Default.PackageRecord), ct);
    }

    public Task<IReadOnlyList<PackageRecord>> ListPackagesAsync(CancellationToken ct) =>
        ReadAllAsync(packages, ProvisioningJsonContext.Default.PackageRecord, ct);

    public Task<ChannelRecord?> FindChannelAsync(string channel, CancellationToken ct) =>
        Names.IsValid(channel)
            ? ReadRecordAsync(Path.Combine(channels, channel + ".json"), ProvisioningJsonContext.Default.ChannelRecord, ct)
            : Task.FromResult<ChannelRecord?>(null);

    public Task<IReadOnlyList<ChannelRecord>> ListChannelsAsync(CancellationToken ct) =>
        ReadAllAsync(channels, ProvisioningJsonContext.Default.ChannelRecord, ct);

    public async Task<AuditEntry> MoveChannelAsync(string channel, Sha256Digest archive, string actor,
        DateTimeOffset at, CancellationToken ct, Func<ChannelRecord?, CancellationToken, Task>? guard = null,
        string action = "channel.move", string? reason = null)
    {
        if (!Names.IsValid(channel))
            throw new ProvisioningException(ProvisioningError.InvalidName, "channel " + Names.Rule);
        await writeLock.WaitAsync(ct);
        try
        {
            var previous = await FindChannelAsync(channel, ct);
            if (guard is not null)
                await guard(previous, ct);
            var entry = new AuditEntry(at, actor, action, channel, previous?.ArchiveSha256, archive.Hex) { Reason = reason };
            // Audit first: a crash between the two lines leaves an entry for a move that did not happen,
            // never a move without an entry.
            await AppendAuditAsync(entry, ct);
            var record = new ChannelRecord(channel, archive.Hex, at, actor);
            await WriteAtomicAsync(Path.Combine(channels, channel + ".json"),
                JsonSerializer.SerializeToUtf8Bytes(record, ProvisioningJsonContext.Default.ChannelRecord), ct);
            return entry;
        }
        finally
        {
            writeLock.Release();
        }
    }

    async Task AppendAuditAsync(AuditEntry entry, CancellationToken ct)
    {
        byte[] line = [.. JsonSerializer.SerializeToUtf8Bytes(entry, ProvisioningJsonContext.Default.AuditEntry), (byte)'\n'];
        try
        {
            await using var file = new FileStream(auditPath, FileMode.Append, FileAccess.Write, FileShare.Read);
            await file.WriteAsync(line, ct);
            file.Flush(flushToDisk: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw StoreFailed("cannot append to the audit log", e);
        }
    }

    public async Task<IReadOnlyList<AuditEntry>> ReadAuditAsync(int max, CancellationToken ct)
    {
        if (!File.Exists(auditPath))
            return [];
        var entries = new List<AuditEntry>();
        try
        {
            foreach (string line in await File.ReadAllLinesAsync(auditPath, Encoding.UTF8, ct))
            {
                // A line cut by a crash during append is not an entry.
                if (line.Length == 0 || line[^1] != '}')
                    continue;
                try
                {
                    if (JsonSerializer.Deserialize(line, ProvisioningJsonContext.Default.AuditEntry) is { } e)
                        entries.Add(e);
                }
                catch (JsonException)
                {
                }
            }
        }
        catch (IOException e)
        {
            throw StoreFailed("cannot read the audit log", e);
        }
        return entries.Count > max ? entries[^max..] : entries;
    }

    public async Task<IReadOnlyList<MachineGroup>> ListGroupsAsync(CancellationToken ct)
    {
        DateTime stamp = Directory.GetLastWriteTimeUtc(groups);
        if (groupCache is { } cached && cached.Stamp == stamp)
            return cached.Groups;
        var list = new List<MachineGroup>();
        foreach (string file in Directory.EnumerateFiles(groups, "*.json").Order(StringComparer.Ordinal))
        {
            var info = new FileInfo(file);
            if (info.Length > maxGroupFileBytes)
                throw StoreFailed($"group file {info.Name} exceeds {maxGroupFileBytes} bytes", null);
            byte[] bytes = await File.ReadAllBytesAsync(file, ct);
            list.Add(MachineGroups.Parse(bytes, Path.GetFileNameWithoutExtension(file)));
        }
        groupCache = (stamp, list);
        return list;
    }

    /// <summary>Writes or replaces a group file atomically (used by tests and tooling; operators may also drop
    /// files into groups/ by hand, renaming them into place).</summary>
    public Task PutGroupAsync(string id, ReadOnlyMemory<byte> json, CancellationToken ct)
    {
        MachineGroups.Parse(json.Span, id);
        return WriteAtomicAsync(Path.Combine(groups, id + ".json"), json, ct);
    }

    public async Task<IReadOnlyList<TokenRecord>> ListTokensAsync(CancellationToken ct) =>
        await ReadRecordAsync(tokensPath, ProvisioningJsonContext.Default.TokenRecordArray, ct) ?? [];

    public async Task AddTokenAsync(TokenRecord token, CancellationToken ct)
    {
        await writeLock.WaitAsync(ct);
        try
        {
            var tokens = (await ListTokensAsync(ct)).Append(token).ToArray();
            await WriteAtomicAsync(tokensPath,
                JsonSerializer.SerializeToUtf8Bytes(tokens, ProvisioningJsonContext.Default.TokenRecordArray), ct);
        }
        finally
        {
            writeLock.Release();
        }
    }

    // tokens.json is written only by `tabula provisioning token create|revoke`; the server writes last uses to their own file,
    // token-uses.json, so a running server can never write back a token that was revoked meanwhile.
    public async Task<TokenRecord?> RevokeTokenAsync(string id, string actor, string? reason, DateTimeOffset at, CancellationToken ct)
    {
        await writeLock.WaitAsync(ct);
        try
        {
            var tokens = await ListTokensAsync(ct);
            var revoked = tokens.Where(t => t.Id == id).ToList();
            if (revoked.Count != 1) return null;
            await WriteAtomicAsync(tokensPath,
                JsonSerializer.SerializeToUtf8Bytes(tokens.Where(t => t.Id != id).ToArray(), ProvisioningJsonContext.Default.TokenRecordArray), ct);
            await AppendAuditAsync(new AuditEntry(at, actor, "token.revoke", id, revoked[0].Name, "revoked") { Reason = reason }, ct);
            return revoked[0];
        }
        finally
        {
            writeLock.Release();
        }
    }

    public async Task<IReadOnlyDictionary<string, DateTimeOffset>> ListTokenUsesAsync(CancellationToken ct) =>
        await ReadRecordAsync(tokenUsesPath, ProvisioningJsonContext.Default.DictionaryStringDateTimeOffset, ct) ?? [];

    public async Task RecordTokenUseAsync(string id, DateTimeOffset at, CancellationToken ct)
    {
        await writeLock.WaitAsync(ct);
        try
        {
            var uses = new Dictionary<string, DateTimeOffset>(await ListTokenUsesAsync(ct)) { [id] = at };
            // Forget ids no longer in tokens.json, so the file stays as small as the token list.
            var live = (await ListTokensAsync(ct)).Select(t => t.Id).ToHashSet();
            foreach (string gone in uses.Keys.Where(k => !live.Contains(k)).ToList()) uses.Remove(gone);
            await WriteAtomicAsync(tokenUsesPath, JsonSerializer.SerializeToUtf8Bytes(uses, ProvisioningJsonContext.Default.DictionaryStringDateTimeOffset), ct);
        }
        finally
        {
            writeLock.Release();
        }
    }

    /// <summary>Checks the store's invariants: every object's bytes hash to its name, every package and channel
    /// points at stored objects, staging is empty. Returns the problems found (empty when consistent).</summary>
    public async Task<IReadOnlyList<string>> CheckAsync(CancellationToken ct)
    {
        var problems = new List<string>();
        foreach (string file in Directory.EnumerateFiles(objects))
        {
            string name = Path.GetFileName(file);
            await using var stream = File.OpenRead(file);
            string actual = Convert.ToHexStringLower(await SHA256.HashDataAsync(stream, ct));
            if (actual != name)
                problems.Add($"object {name} hashes to {actual}");
        }
        foreach (var p in await ListPackagesAsync(ct))
            foreach (string d in (string[])[p.ArchiveSha256, p.DescriptorSha256, p.UploadedDescriptorSha256])
                if (!Sha256Digest.TryParse(d, out var digest) || FindObject(digest) is null)
                    problems.Add($"package {p.ArchiveSha256} references missing object {d}");
        foreach (var c in await ListChannelsAsync(ct))
            if (!Sha256Digest.TryParse(c.ArchiveSha256, out var digest) || await FindPackageAsync(digest, ct) is null)
                problems.Add($"channel {c.Name} points at unknown package {c.ArchiveSha256}");
        if (Directory.EnumerateFileSystemEntries(tmp).Any())
            problems.Add("staging directory is not empty");
        return problems;
    }

    string ObjectPath(Sha256Digest digest) => Path.Combine(objects, digest.Hex);

    async Task WriteAtomicAsync(string path, ReadOnlyMemory<byte> bytes, CancellationToken ct)
    {
        string staging = Path.Combine(tmp, $"{Guid.NewGuid():N}.part");
        try
        {
            await using (var file = new FileStream(staging, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                await file.WriteAsync(bytes, ct);
                file.Flush(flushToDisk: true);
            }
            if (path.StartsWith(objects + Path.DirectorySeparatorChar, StringComparison.Ordinal))
                MakeReadOnly(staging);
            File.Move(staging, path, overwrite: true);
            SyncDirectory(Path.GetDirectoryName(path)!);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or LinuxException)
        {
            TryDelete(staging);
            throw StoreFailed($"cannot write {Path.GetRelativePath(root, path)}", e);
        }
    }

    async Task<T?> ReadRecordAsync<T>(string path, JsonTypeInfo<T> type, CancellationToken ct) where T : class
    {
        byte[] bytes;
        try
        {
            bytes = await File.ReadAllBytesAsync(path, ct);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw StoreFailed($"cannot read {Path.GetRelativePath(root, path)}", e);
        }
        try
        {
            return JsonSerializer.Deserialize(bytes, type);
        }
        catch (JsonException e)
        {
            throw StoreFailed($"{Path.GetRelativePath(root, path)} is corrupt", e);
        }
    }

    async Task<IReadOnlyList<T>> ReadAllAsync<T>(string dir, JsonTypeInfo<T> type, CancellationToken ct) where T : class
    {
        var list = new List<T>();
        foreach (string file in Directory.EnumerateFiles(dir, "*.json").Order(StringComparer.Ordinal))
            if (await ReadRecordAsync(file, type, ct) is { } record)
                list.Add(record);
        return list;
    }

    // Objects never change; read-only also protects them through hard links made by an export.
    // A rename survives power loss only once its directory is synced (the BCL flushes files, not directories).
    static void SyncDirectory(string directory)
    {
        if (OperatingSystem.IsLinux())
            FileSystem.SyncDirectory(directory);
    }

    static void MakeReadOnly(string path)
    {
        if (!OperatingSystem.IsWindows())
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
    }

    static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
        }
    }

    static ProvisioningException StoreFailed(string message, Exception? inner) =>
        new(ProvisioningError.StoreFailed, message, inner);
}
