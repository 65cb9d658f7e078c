using System.Text;
using Tabula.Packaging.Cpio;
using Tabula.Testing;

namespace Tabula.Packaging.Tests;

public sealed class HandoverRecordTests
{
    static readonly byte[] HostConfigJson =
        """{"network_mode":"static","host_ip":"10.0.2.15/24","gateway":"10.0.2.2","ospkg_pointer":"https://10.0.2.2/os.json","tabula_relay":{"enrollment_token":"tet_x"}}"""u8.ToArray();

    static HandoverRecord Sample(FetchMethod source = FetchMethod.Network) =>
        new(Sha256Digest.Of("archive"u8), source, source == FetchMethod.Network ? "https://10.0.2.2/os.json" : null,
            "/etc/host_configuration.json", (byte[])HostConfigJson.Clone());

    [Theory, InlineData(FetchMethod.Network), InlineData(FetchMethod.Initramfs)]
    public void What_the_writer_writes_the_reader_reads_back_field_for_field(FetchMethod source)
    {
        var written = Sample(source);
        var read = HandoverRecord.Parse(written.ToJson());
        Assert.Equal(written.OsPackageSha256, read.OsPackageSha256);
        Assert.Equal((written.Source, written.DescriptorUrl, written.HostConfigSource), (read.Source, read.DescriptorUrl, read.HostConfigSource));
        Assert.Equal(HostConfigJson, read.HostConfigJson);                 // the host configuration exactly as read
    }

    // stmgr's sample format (a description, "---", then JSON) passes every check; it used to fail only here, at kexec,
    // so stboot looped forever on it. Accepted everywhere now: the handover carries its JSON part, which the relay reads.
    [Theory]
    [InlineData("stmgr-v0.6.6/hostconfigs/compat-1.txt")]
    [InlineData("stmgr-v0.6.6/hostconfigs/compat-2.txt")]
    [InlineData("stmgr-v0.6.6/hostconfigs/compat-3.txt")]
    public void A_host_configuration_in_stmgr_sample_format_is_handed_over_as_its_json(string file)
    {
        byte[] sample = Vectors.Read("st-upstream/" + file);
        var expected = HostConfig.Parse(sample);
        Assert.NotEqual((byte)'{', sample[0]);
        var written = new HandoverRecord(Sha256Digest.Of("archive"u8), FetchMethod.Network, "https://10.0.2.2/os.json", "/etc/host_configuration.json", sample);
        var read = HandoverRecord.Parse(written.ToJson());
        Assert.Equal((byte)'{', read.HostConfigJson[0]);
        Assert.Equal(HostConfig.JsonPart(sample).Trim(" \t\r\n"u8).ToArray(), read.HostConfigJson);
        Assert.Equal(expected.OsPackagePointers, HostConfig.Parse(read.HostConfigJson).OsPackagePointers);
    }

    [Fact]
    public void The_json_has_the_documented_keys_in_order()
    {
        string json = Encoding.UTF8.GetString(Sample().ToJson());
        string[] keys = ["\"version\": 1", "\"ospkg_sha256\": \"" + Sha256Digest.Of("archive"u8).Hex, "\"ospkg_source\": \"network\"",
            "\"descriptor_url\"", "\"host_config_source\"", "\"host_config\""];
        Assert.Equal(keys.Select(k => json.IndexOf(k, StringComparison.Ordinal)).Order(), keys.Select(k => json.IndexOf(k, StringComparison.Ordinal)));
        Assert.DoesNotContain(-1, keys.Select(k => json.IndexOf(k, StringComparison.Ordinal)));
        Assert.EndsWith("}\n", json);
    }

    [Fact]
    public void The_archive_holds_the_json_at_the_layout_path_mode_0600_and_appends_4_byte_aligned()
    {
        var record = Sample();
        using var initramfs = new MemoryStream();
        initramfs.Write(new byte[] { 1, 2, 3, 4, 5 });
        long length = record.AppendTo(initramfs);
        byte[] bytes = initramfs.ToArray();
        Assert.Equal(length, bytes.Length);
        Assert.Equal(new byte[] { 1, 2, 3, 4, 5, 0, 0, 0 }, bytes[..8]);
        var entries = NewcReader.Read(bytes[8..]);
        Assert.Equal(["etc", InitramfsLayout.TabulaDirectory, InitramfsLayout.Handover], entries.Select(e => e.Name));
        var file = entries[^1];
        Assert.Equal(0x8180u, file.Mode);
        Assert.Equal(record.ToJson(), file.Data);
    }

    public static TheoryData<string, FormatError, string> Refused => new()
    {
        { "[]", FormatError.InvalidJson, "must be a JSON object" },
        { """{"version":2}""", FormatError.UnsupportedVersion, "version 2" },
        { """{"version":1,"ospkg_sha256":"ABC"}""", FormatError.InvalidField, "64 lowercase hex" },
        { Json(source: "\"floppy\""), FormatError.InvalidField, "ospkg_source" },
        { Json(hostConfig: "[1]"), FormatError.InvalidField, "host_config" },
        { Json(hostConfig: null), FormatError.InvalidField, "host_config" },
        { Json(hostConfigSource: "\"\""), FormatError.InvalidField, "host_config_source" },
    };

    static string Json(string source = "\"network\"", string? hostConfig = "{}", string hostConfigSource = "\"efivar:STHostConfig\"") =>
        $$"""{"version":1,"ospkg_sha256":"{{new string('0', 64)}}","ospkg_source":{{source}},"host_config_source":{{hostConfigSource}}{{(hostConfig is null ? "" : ",\"host_config\":" + hostConfig)}}}""";

    [Theory, MemberData(nameof(Refused))]
    public void Bad_records_are_refused_with_a_reason_naming_the_field(string json, FormatError error, string detail)
    {
        var e = Assert.Throws<PackageFormatException>(() => HandoverRecord.Parse(Encoding.UTF8.GetBytes(json)));
        Assert.Equal(error, e.Error);
        Assert.Contains(detail, e.Message);
    }

    [Fact]
    public void Oversized_input_is_refused_before_parsing_and_the_writer_never_writes_what_the_reader_refuses()
    {
        Assert.Equal(FormatError.TooLarge, Assert.Throws<PackageFormatException>(() => HandoverRecord.Parse(new byte[Limits.MaxHandoverBytes + 1])).Error);
        byte[] huge = Encoding.UTF8.GetBytes($$"""{"pad":"{{new string('x', Limits.MaxHandoverBytes)}}"}""");
        Assert.Throws<ArgumentException>(() => (Sample() with { HostConfigJson = huge }).ToJson());
        Assert.Throws<ArgumentException>(() => (Sample() with { HostConfigJson = "[1]"u8.ToArray() }).ToJson());
    }

    [Fact]
    public void Clear_zeroes_the_host_configuration()
    {
        var record = HandoverRecord.Parse(Sample().ToJson());
        record.Clear();
        Assert.All(record.HostConfigJson, b => Assert.Equal(0, b));
    }
}
