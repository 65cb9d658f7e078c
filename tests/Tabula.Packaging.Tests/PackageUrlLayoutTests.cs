namespace Tabula.Packaging.Tests;

public sealed class PackageUrlLayoutTests
{
    static readonly Sha256Digest Digest = Sha256Digest.Of("a package"u8);

    [Theory]
    [InlineData("https://prov.example:8443/channels/stable.json", "https://prov.example:8443/ospkg/")]
    [InlineData("https://cdn.example/tabula/channels/stable.json?x=1", "https://cdn.example/tabula/ospkg/")]
    [InlineData("https://prov.example/groups/edge-1/ospkg.json", "https://prov.example/ospkg/")]
    [InlineData("https://prov.example/mirror/machines/ospkg.json", "https://prov.example/mirror/ospkg/")]
    [InlineData("http://user:pw@prov.example/ospkg/0000000000000000000000000000000000000000000000000000000000000000.json", "http://user:pw@prov.example/ospkg/")]
    public void A_pointer_in_the_servers_layout_names_the_content_addressed_descriptor_beside_it(string pointer, string expectedDirectory)
    {
        var resolved = PackageUrlLayout.ContentAddressedDescriptor(new Uri(pointer), Digest);
        Assert.Equal(new Uri(expectedDirectory + Digest.Hex + ".json"), resolved);
        Assert.Equal("", resolved!.Query);
    }

    [Theory]
    [InlineData("https://example.org/os-pkg/example.json")]          // upstream System Transparency: a plain file
    [InlineData("https://example.org/channels/")]
    [InlineData("https://example.org/channels/.json")]
    [InlineData("https://example.org/stable.json")]
    [InlineData("https://example.org/groups//ospkg.json")]
    public void Any_other_pointer_has_none(string pointer) =>
        Assert.Null(PackageUrlLayout.ContentAddressedDescriptor(new Uri(pointer), Digest));

    [Fact]
    public void The_paths_are_the_ones_the_provisioning_server_serves() =>
        Assert.Equal(($"ospkg/{Digest.Hex}.json", $"ospkg/{Digest.Hex}.zip", "channels/stable.json", "groups/g/ospkg.json"),
            (PackageUrlLayout.Descriptor(Digest), PackageUrlLayout.Archive(Digest), PackageUrlLayout.ChannelDescriptor("stable"), PackageUrlLayout.GroupDescriptor("g")));
}
