using System.Text;

namespace Tabula.Fleet.Protocol.Tests;

public sealed class RelayConfigTests
{
    [Theory]
    [InlineData("https://192.0.2.10:8443")]
    [InlineData("https://[2001:db8::1]:8443/fleet")]
    [InlineData("https://fleet.example.net")]
    [InlineData("https://fleet-1.lab:8443/")]
    public void What_the_writer_accepts_the_reader_reads_back(string url)
    {
        byte[] json = RelayConfig.Create(url).ToJson();
        Assert.Equal($"{{\"version\":1,\"fleet_url\":\"{url}\"}}\n", Encoding.UTF8.GetString(json));
        Assert.Equal(new Uri(url), RelayConfig.Parse(json).FleetUrl);
    }

    [Theory]
    [InlineData("http://fleet.example.net", "https://HOST")]
    [InlineData("fleet.example.net", "https://HOST")]
    [InlineData("https://", "https://HOST")]
    [InlineData("https://admin:secret@192.0.2.10", "without credentials")]
    [InlineData("https://192.0.2.10/?token=x", "query")]
    [InlineData("https://192.0.2.10/#x", "fragment")]
    [InlineData("https://fleet_1.example.net", "DNS name")]
    [InlineData("https://-fleet.example.net", "DNS name")]
    [InlineData("https://bücher.example", "DNS name")]
    public void The_writer_and_the_reader_refuse_the_same_urls(string url, string why)
    {
        var written = Assert.Throws<RelayConfigException>(() => RelayConfig.Create(url));
        Assert.Equal(RelayConfigError.InvalidFleetUrl, written.Reason);
        Assert.Contains(why, written.Message);
        string json = $"{{\"version\":1,\"fleet_url\":\"{url}\"}}";
        var read = Assert.Throws<RelayConfigException>(() => RelayConfig.Parse(Encoding.UTF8.GetBytes(json)));
        Assert.Equal((written.Reason, written.Message), (read.Reason, read.Message));
    }

    [Fact]
    public void Refuses_a_url_over_the_limit()
    {
        string url = "https://fleet.example.net/" + new string('a', RelayConfig.MaxUrlLength);
        Assert.Equal(RelayConfigError.InvalidFleetUrl, Assert.Throws<RelayConfigException>(() => RelayConfig.Create(url)).Reason);
    }

    [Theory]
    [InlineData("""{"version":2,"fleet_url":"https://10.0.2.2"}""", RelayConfigError.UnsupportedVersion)]
    [InlineData("""{"version":1.5,"fleet_url":"https://10.0.2.2"}""", RelayConfigError.UnsupportedVersion)]
    [InlineData("""{"version":1}""", RelayConfigError.Malformed)]
    [InlineData("""{"version":1,"fleet_url":7}""", RelayConfigError.Malformed)]
    [InlineData("""{"version":1,""", RelayConfigError.Malformed)]
    [InlineData("[]", RelayConfigError.Malformed)]
    [InlineData("", RelayConfigError.Malformed)]
    // An escaped half of a surrogate pair, in a value (found while writing the RelayConfig fuzz target) or a name (afl).
    [InlineData("""{"version":1,"fleet_url":"https://a\ud800.example"}""", RelayConfigError.Malformed)]
    [InlineData("""{"ver\ud800.exaammplt_url":"https://193"}""", RelayConfigError.Malformed)]
    [InlineData("""{"version":1,"fleet_url":"https://a.example/\udc00"}""", RelayConfigError.Malformed)]
    public void The_reader_refuses_malformed_files_with_a_reason(string json, RelayConfigError reason) =>
        Assert.Equal(reason, Assert.Throws<RelayConfigException>(() => RelayConfig.Parse(Encoding.UTF8.GetBytes(json))).Reason);

    [Fact]
    public void The_reader_skips_fields_it_does_not_know_and_refuses_oversized_files()
    {
        var config = RelayConfig.Parse("""{"version":1,"fleet_url":"https://10.0.2.2","egress":{"dns":["192.0.2.53"]}}"""u8);
        Assert.Equal("10.0.2.2", config.FleetUrl.Host);
        Assert.Equal(RelayConfigError.TooLarge,
            Assert.Throws<RelayConfigException>(() => RelayConfig.Parse(new byte[RelayConfig.MaxBytes + 1])).Reason);
    }
}
