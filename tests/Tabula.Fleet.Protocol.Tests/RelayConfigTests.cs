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

public sealed class RelayConfigListTests
{
    [Fact]
    public void A_list_is_written_after_fleet_url_which_is_its_first_and_read_back_in_order()
    {
        string[] urls = ["https://192.0.2.10:8443", "https://[2001:db8::2]:8443/fleet", "https://fleet-3.example.net"];
        byte[] json = RelayConfig.Create(urls).ToJson();
        Assert.Equal("""{"version":1,"fleet_url":"https://192.0.2.10:8443","fleet_urls":["https://192.0.2.10:8443","https://[2001:db8::2]:8443/fleet","https://fleet-3.example.net"]}""" + "\n",
            Encoding.UTF8.GetString(json));
        var read = RelayConfig.Parse(json);
        Assert.Equal(urls.Select(u => new Uri(u)), read.FleetUrls);
        Assert.Equal(new Uri(urls[0]), read.FleetUrl);
        Assert.Equal(json, read.ToJson());
    }

    [Fact]
    public void A_one_url_list_writes_the_bytes_of_a_single_fleet_url_and_an_old_file_reads_as_a_list_of_one()
    {
        Assert.Equal(RelayConfig.Create("https://10.0.2.2:9443").ToJson(), RelayConfig.Create(["https://10.0.2.2:9443"]).ToJson());
        var old = RelayConfig.Parse("""{"version":1,"fleet_url":"https://10.0.2.2:9443"}"""u8);
        Assert.Equal([new Uri("https://10.0.2.2:9443")], old.FleetUrls);
        var listed = RelayConfig.Parse("""{"version":1,"fleet_url":"https://10.0.2.2:9443","fleet_urls":["https://10.0.2.2:9443"]}"""u8);
        Assert.Equal(old.ToJson(), listed.ToJson());
    }

    [Theory]
    [InlineData("""{"version":1,"fleet_url":"https://a.example","fleet_urls":["https://b.example","https://a.example"]}""", RelayConfigError.InvalidFleetUrlList, "start with fleet_url")]
    [InlineData("""{"version":1,"fleet_url":"https://a.example","fleet_urls":["https://a.example","https://a.example"]}""", RelayConfigError.InvalidFleetUrlList, "twice")]
    [InlineData("""{"version":1,"fleet_url":"https://a.example","fleet_urls":[]}""", RelayConfigError.InvalidFleetUrlList, "1 to 8")]
    [InlineData("""{"version":1,"fleet_url":"https://a.example","fleet_urls":["https://a.example","http://b.example"]}""", RelayConfigError.InvalidFleetUrl, "https://HOST")]
    [InlineData("""{"version":1,"fleet_url":"https://a.example","fleet_urls":["https://a.example",7]}""", RelayConfigError.Malformed, "array of strings")]
    [InlineData("""{"version":1,"fleet_url":"https://a.example","fleet_urls":"https://a.example"}""", RelayConfigError.Malformed, "array of strings")]
    [InlineData("""{"version":1,"fleet_urls":["https://a.example"]}""", RelayConfigError.Malformed, "fleet_url must be a string")]
    public void The_reader_refuses_a_bad_list_with_a_reason(string json, RelayConfigError reason, string why)
    {
        var e = Assert.Throws<RelayConfigException>(() => RelayConfig.Parse(Encoding.UTF8.GetBytes(json)));
        Assert.Equal(reason, e.Reason);
        Assert.Contains(why, e.Message);
    }

    [Fact]
    public void The_writer_refuses_what_the_reader_refuses()
    {
        Assert.Equal(RelayConfigError.InvalidFleetUrlList, Assert.Throws<RelayConfigException>(() => RelayConfig.Create(Array.Empty<string>())).Reason);
        Assert.Equal(RelayConfigError.InvalidFleetUrlList, Assert.Throws<RelayConfigException>(() => RelayConfig.Create(["https://a.example", "https://a.example"])).Reason);
        Assert.Equal(RelayConfigError.InvalidFleetUrlList, Assert.Throws<RelayConfigException>(() =>
            RelayConfig.Create([.. Enumerable.Range(1, RelayConfig.MaxFleetUrls + 1).Select(i => $"https://f{i}.example")])).Reason);
        Assert.Equal(RelayConfigError.InvalidFleetUrl, Assert.Throws<RelayConfigException>(() => RelayConfig.Create(["https://a.example", "https://x:y@b.example"])).Reason);
    }
}
