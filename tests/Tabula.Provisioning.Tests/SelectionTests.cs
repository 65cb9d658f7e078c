using System.Text;
using Tabula.Provisioning.Core;

namespace Tabula.Provisioning.Tests;

public sealed class SelectionTests
{
    static readonly MachineGroup[] Groups =
    [
        Group("default", "{}", "stable"),
        Group("rack-a", """{"hostname":"relay-07"}""", "testing"),
        Group("relay-07", """{"hostname":"relay-07","mac":"52:54:00:12:34:56"}""", "canary"),
        Group("serial", """{"serial":"SN-1"}""", "serial-channel"),
    ];

    static MachineGroup Group(string id, string selector, string channel) =>
        MachineGroups.Parse(Encoding.UTF8.GetBytes($$"""{"id":"{{id}}","selector":{{selector}},"channel":"{{channel}}"}"""), id);

    [Theory]
    [InlineData("hostname=relay-07;mac=52:54:00:12:34:56", "relay-07")]
    [InlineData("hostname=relay-07;mac=52:54:00:00:00:01", "rack-a")]
    [InlineData("hostname=relay-07", "rack-a")]
    [InlineData("serial=SN-1", "serial")]
    [InlineData("hostname=relay-99", "default")]
    [InlineData("", "default")]
    public void Most_specific_matching_group_wins(string labels, string expected)
    {
        var parsed = labels.Split(';', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split('='))
            .ToDictionary(kv => kv[0], kv => kv[1]);
        Assert.Equal(expected, MachineGroups.Select(Groups, parsed).Id);
    }

    [Fact]
    public void Without_a_default_group_an_unmatched_machine_gets_no_matching_group()
    {
        var e = Assert.Throws<ProvisioningException>(() =>
            MachineGroups.Select(Groups.Skip(1), new Dictionary<string, string> { ["hostname"] = "x" }));
        Assert.Equal(ProvisioningError.NoMatchingGroup, e.Error);
    }

    [Theory]
    [InlineData("52-54-00-12-34-56", "52:54:00:12:34:56")]
    [InlineData("52:54:00:AB:CD:EF", "52:54:00:ab:cd:ef")]
    [InlineData("525400abcdef", "52:54:00:ab:cd:ef")]
    public void Mac_labels_are_normalised_to_lowercase_colon_form(string input, string expected)
    {
        Assert.True(MachineGroups.TryNormalize("mac", input, out string normalized));
        Assert.Equal(expected, normalized);
    }

    [Theory]
    [InlineData("mac", "52:54:00:12:34")]
    [InlineData("mac", "zz:54:00:12:34:56")]
    [InlineData("hostname", "relay/07")]
    [InlineData("serial", "SN 1")]
    [InlineData("ip", "10.0.0.1")]
    public void Invalid_label_values_are_refused(string key, string value) =>
        Assert.False(MachineGroups.TryNormalize(key, value, out _));

    [Fact]
    public void Group_file_whose_id_differs_from_its_file_name_is_refused()
    {
        var e = Assert.Throws<ProvisioningException>(() =>
            MachineGroups.Parse("""{"id":"other","selector":{},"channel":"stable"}"""u8, "default"));
        Assert.Contains("id must equal the file name", e.Message);
    }

    [Fact]
    public void Group_whose_host_config_stboot_would_reject_is_refused_naming_the_field()
    {
        var e = Assert.Throws<ProvisioningException>(() => MachineGroups.Parse(
            """{"id":"g","selector":{},"channel":"stable","host_config":{"network_mode":"static","ospkg_pointer":"https://p/x.json"}}"""u8, "g"));
        Assert.Contains("host_ip", e.Message);
    }

    [Fact]
    public void Staff_token_authenticates_and_the_record_holds_only_its_hash()
    {
        var (token, record) = StaffTokens.Create("alice", DateTimeOffset.UnixEpoch);
        Assert.StartsWith("tbl_", token);
        Assert.DoesNotContain(token["tbl_".Length..], record.Sha256);
        Assert.Equal("alice", StaffTokens.Authenticate(token, [record]));
        Assert.Null(StaffTokens.Authenticate(token + "x", [record]));
        Assert.Null(StaffTokens.Authenticate(null, [record]));
    }
}
