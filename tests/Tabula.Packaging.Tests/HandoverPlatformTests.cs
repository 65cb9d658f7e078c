using System.Text;

namespace Tabula.Packaging.Tests;

/// <summary>The hand-over's <c>platform</c> object (issue 20): written, read back, measured as the same bytes, and refused
/// with a reason naming the field when malformed.</summary>
public sealed class HandoverPlatformTests
{
    static HandoverRecord Sample(HandoverPlatform? platform) =>
        new HandoverRecord(Sha256Digest.Of("archive"u8), FetchMethod.Network, "https://10.0.2.2/os.json", "efivar:STHostConfig", "{}"u8.ToArray())
        { Platform = platform };

    [Theory]
    [InlineData(PlatformFirmware.Uefi, true, KernelLockdown.Integrity, """{"firmware":"uefi","secure_boot":true,"lockdown":"integrity"}""")]
    [InlineData(PlatformFirmware.Uefi, false, KernelLockdown.None, """{"firmware":"uefi","secure_boot":false,"lockdown":"none"}""")]
    [InlineData(PlatformFirmware.Uefi, null, KernelLockdown.Confidentiality, """{"firmware":"uefi","secure_boot":null,"lockdown":"confidentiality"}""")]
    [InlineData(PlatformFirmware.Bios, null, null, """{"firmware":"bios","secure_boot":null,"lockdown":null}""")]
    public void The_platform_reads_back_and_its_measured_bytes_are_the_compact_object(PlatformFirmware firmware, bool? secureBoot, KernelLockdown? lockdown, string measured)
    {
        var platform = new HandoverPlatform(firmware, secureBoot, lockdown);
        var read = HandoverRecord.Parse(Sample(platform).ToJson());
        Assert.Equal(platform, read.Platform);
        Assert.Equal(measured, Encoding.UTF8.GetString(platform.ToMeasuredJson()));
        Assert.Equal(lockdown is KernelLockdown.Integrity or KernelLockdown.Confidentiality, platform.LockedDown);
    }

    [Fact]
    public void A_record_without_a_platform_reads_as_null_and_writes_none()
    {
        byte[] json = Sample(null).ToJson();
        Assert.DoesNotContain("platform", Encoding.UTF8.GetString(json));
        Assert.Null(HandoverRecord.Parse(json).Platform);
    }

    [Theory]
    [InlineData("none [integrity] confidentiality\n", KernelLockdown.Integrity)]
    [InlineData("[none] integrity confidentiality\n", KernelLockdown.None)]
    [InlineData("none integrity [confidentiality]", KernelLockdown.Confidentiality)]
    [InlineData("none integrity confidentiality", null)]
    [InlineData("[full]", null)]
    public void The_lockdown_mode_is_the_bracketed_word_of_securityfs(string text, KernelLockdown? mode) =>
        Assert.Equal(mode, HandoverPlatform.ParseSecurityFs(text));

    public static TheoryData<string, string> Refused => new()
    {
        { "\"uefi\"", "field \"platform\" must be an object" },
        { """{"secure_boot":true,"lockdown":"none"}""", "field \"firmware\" is required" },
        { """{"firmware":"efi","secure_boot":true,"lockdown":"none"}""", "field \"firmware\" is required (\"uefi\" or \"bios\")" },
        { """{"firmware":"uefi","secure_boot":"yes","lockdown":"none"}""", "field \"secure_boot\" must be true or false" },
        { """{"firmware":"uefi","secure_boot":true,"lockdown":"full"}""", "field \"lockdown\" is required (\"none\"" },
        { """{"firmware":"uefi","secure_boot":true,"lockdown":1}""", "field \"lockdown\" must be a string" },
        { """{"firmware":"bios","secure_boot":true,"lockdown":"none"}""", "must be null when the firmware is \"bios\"" },
    };

    [Theory, MemberData(nameof(Refused))]
    public void A_malformed_platform_is_refused_naming_the_field(string platform, string detail)
    {
        string json = $$"""{"version":1,"ospkg_sha256":"{{new string('0', 64)}}","ospkg_source":"network","host_config_source":"x","host_config":{},"platform":{{platform}}}""";
        var e = Assert.Throws<PackageFormatException>(() => HandoverRecord.Parse(Encoding.UTF8.GetBytes(json)));
        Assert.Equal(FormatError.InvalidField, e.Error);
        Assert.Contains(detail, e.Message, StringComparison.Ordinal);
        Assert.Contains("platform", e.Message, StringComparison.Ordinal);
    }
}
