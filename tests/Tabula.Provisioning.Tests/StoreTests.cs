using System.Security.Cryptography;
using Tabula.Provisioning.Core;
using Tabula.Provisioning.Storage;
using Tabula.Packaging;

namespace Tabula.Provisioning.Tests;

public sealed class StoreTests : IDisposable
{
    readonly string root = Directory.CreateTempSubdirectory("tabula-store-").FullName;

    public void Dispose() => Directory.Delete(root, recursive: true);

    [Fact]
    public async Task Staged_object_is_invisible_until_committed_and_then_named_by_its_digest()
    {
        var store = new FileStore(root);
        byte[] data = RandomNumberGenerator.GetBytes(300_000);
        using var staged = await store.StageAsync(new MemoryStream(data), 1 << 20, default);
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(data)), staged.Digest.Hex);
        Assert.Null(store.FindObject(staged.Digest));
        var stored = await store.CommitAsync(staged, default);
        Assert.Equal(data, await File.ReadAllBytesAsync(Path.Combine(root, "sha256", staged.Digest.Hex)));
        Assert.Equal(data.Length, stored.Length);
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(root, "tmp")));
    }

    [Fact]
    public async Task Staging_beyond_the_limit_throws_too_large_and_leaves_nothing()
    {
        var store = new FileStore(root);
        var e = await Assert.ThrowsAsync<ProvisioningException>(() =>
            store.StageAsync(new MemoryStream(new byte[5000]), 4096, default));
        Assert.Equal(ProvisioningError.TooLarge, e.Error);
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(root, "tmp")));
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(root, "sha256")));
    }

    [Fact]
    public async Task Reopening_the_store_discards_staging_left_by_a_crash()
    {
        var store = new FileStore(root);
        await File.WriteAllBytesAsync(Path.Combine(root, "tmp", "cut-short.part"), new byte[100]);
        _ = new FileStore(root);
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(root, "tmp")));
        Assert.Empty(await store.CheckAsync(default));
    }

    [Fact]
    public async Task Check_reports_an_object_whose_bytes_do_not_match_its_name()
    {
        var store = new FileStore(root);
        var stored = await store.PutAsync(new byte[] { 1, 2, 3 }, default);
        File.SetUnixFileMode(stored.PhysicalPath, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        await File.WriteAllBytesAsync(stored.PhysicalPath, [1, 2, 4]);
        var problems = await store.CheckAsync(default);
        Assert.Contains(problems, p => p.Contains(stored.Digest.Hex));
    }

    [Fact]
    public async Task Stored_objects_are_read_only()
    {
        var stored = await new FileStore(root).PutAsync(new byte[] { 1 }, default);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.GroupRead | UnixFileMode.OtherRead,
            File.GetUnixFileMode(stored.PhysicalPath));
    }

    [Fact]
    public async Task Each_channel_move_appends_an_audit_entry_with_actor_from_and_to()
    {
        var store = new FileStore(root);
        var a = Sha256Digest.Of([1]);
        var b = Sha256Digest.Of([2]);
        await store.MoveChannelAsync("stable", a, "alice", DateTimeOffset.UnixEpoch, default);
        await store.MoveChannelAsync("stable", b, "bob", DateTimeOffset.UnixEpoch.AddHours(1), default);
        var audit = await new FileStore(root).ReadAuditAsync(10, default);
        Assert.Equal(2, audit.Count);
        Assert.Equal(new AuditEntry(DateTimeOffset.UnixEpoch.AddHours(1), "bob", "channel.move", "stable", a.Hex, b.Hex), audit[1]);
        Assert.Null(audit[0].From);
        Assert.Equal(b.Hex, (await store.FindChannelAsync("stable", default))!.ArchiveSha256);
    }

    [Fact]
    public async Task Audit_line_torn_by_a_crash_is_skipped()
    {
        var store = new FileStore(root);
        await store.MoveChannelAsync("stable", Sha256Digest.Of([1]), "alice", DateTimeOffset.UnixEpoch, default);
        await File.AppendAllTextAsync(Path.Combine(root, "audit.jsonl"), "{\"at\":\"2026-");
        Assert.Single(await store.ReadAuditAsync(10, default));
    }

    [Theory]
    [InlineData("stable", true)]
    [InlineData("relay-2026", true)]
    [InlineData("", false)]
    [InlineData("-x", false)]
    [InlineData("Stable", false)]
    [InlineData("../etc", false)]
    [InlineData("a/b", false)]
    [InlineData("a\0b", false)]
    public void Names_are_lowercase_letters_digits_and_dashes(string name, bool valid) =>
        Assert.Equal(valid, Names.IsValid(name));
}
