namespace Tabula.Packaging.Tests;

/// <summary>
/// JSON that escapes half a surrogate pair ("\ud800") is valid JSON in valid UTF-8, but decoding the string throws
/// InvalidOperationException. afl found it through the RelayConfig fuzz target; the same input broke the host
/// configuration, descriptor, manifest and hand-over readers, which share JsonFields.ParseObject. Each is refused as
/// PackageFormatException(InvalidJson) now.
/// </summary>
public sealed class JsonEscapeTests
{
    public static TheoryData<string> Inputs => new()
    {
        """{"ver\ud800":1}""",                                                 // a property name (what afl found)
        """{"ver\ud800.exaammplt_url":"https://193"}""",                      // afl's input itself
        """{"network_mode":"dhcp","ospkg_pointer":"https://a.example/\udc00"}""",  // a value: a low half alone
        """{"network_mode":"dhcp","ospkg_pointer":"x","description":"\ud800x"}""",  // a high half without its low half
    };

    [Theory, MemberData(nameof(Inputs))]
    public void Unpaired_surrogate_escapes_are_refused_as_invalid_json_by_every_reader(string json)
    {
        byte[] bytes = System.Text.Encoding.UTF8.GetBytes(json);
        foreach (var parse in new Action[]
        {
            () => HostConfig.Parse(bytes), () => Descriptor.Parse(bytes), () => Manifest.Parse(bytes),
            () => TrustPolicy.Parse(bytes), () => HandoverRecord.Parse(bytes),
        })
            Assert.Equal(FormatError.InvalidJson, Assert.Throws<PackageFormatException>(parse).Error);
    }

    [Fact]
    public void A_surrogate_pair_written_as_two_escapes_is_still_read()
    {
        var config = HostConfig.Parse("""{"network_mode":"dhcp","ospkg_pointer":"https://a.example/\ud83d\ude00"}"""u8);
        Assert.Equal(["https://a.example/\U0001F600"], config.OsPackagePointers);
    }
}
