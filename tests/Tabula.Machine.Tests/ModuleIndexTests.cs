using System.Text;
using CsCheck;
using Tabula.Machine.Modules;

namespace Tabula.Machine.Tests;

/// <summary>modules.dep, modules.alias and modalias: what depmod and the kernel write, the limits, and the glob rules.</summary>
public sealed class ModuleIndexTests
{
    // Debian 12 (6.1.0) lines for virtio_net and virtio_pci, with .ko.xz as later Debian kernels name them.
    const string ModulesDep = """
        kernel/drivers/virtio/virtio.ko.xz: kernel/drivers/virtio/virtio_ring.ko.xz
        kernel/drivers/virtio/virtio_ring.ko.xz:
        kernel/drivers/virtio/virtio_pci_modern_dev.ko.xz:
        kernel/drivers/virtio/virtio_pci_legacy_dev.ko.xz:
        kernel/drivers/virtio/virtio_pci.ko.xz: kernel/drivers/virtio/virtio_pci_legacy_dev.ko.xz kernel/drivers/virtio/virtio_pci_modern_dev.ko.xz kernel/drivers/virtio/virtio.ko.xz kernel/drivers/virtio/virtio_ring.ko.xz
        kernel/drivers/net/virtio_net.ko.xz: kernel/drivers/net/net_failover.ko.xz kernel/net/core/failover.ko.xz kernel/drivers/virtio/virtio.ko.xz kernel/drivers/virtio/virtio_ring.ko.xz
        kernel/drivers/net/net_failover.ko.xz: kernel/net/core/failover.ko.xz
        kernel/net/core/failover.ko.xz:
        """;

    [Fact]
    public void Closure_of_virtio_net_loads_dependencies_first_each_once()
    {
        var deps = ModuleDependencies.Parse(ModulesDep);
        Assert.Equal(
        [
            "kernel/drivers/virtio/virtio_ring.ko.xz",
            "kernel/drivers/virtio/virtio.ko.xz",
            "kernel/net/core/failover.ko.xz",
            "kernel/drivers/net/net_failover.ko.xz",
            "kernel/drivers/net/virtio_net.ko.xz",
            "kernel/drivers/virtio/virtio_pci_modern_dev.ko.xz",
            "kernel/drivers/virtio/virtio_pci_legacy_dev.ko.xz",
            "kernel/drivers/virtio/virtio_pci.ko.xz",
        ], deps.Closure(["virtio_net", "virtio-pci"]));
    }

    [Fact]
    public void Unknown_modules_cycles_and_malformed_lines_are_typed_errors()
    {
        var deps = ModuleDependencies.Parse(ModulesDep);
        Assert.Equal(ModuleIndexError.ModuleNotFound, Assert.Throws<ModuleIndexException>(() => deps.Closure(["e1000"])).Reason);
        var cyclic = ModuleDependencies.Parse("a.ko: b.ko\nb.ko: a.ko\n");
        Assert.Equal(ModuleIndexError.DependencyCycle, Assert.Throws<ModuleIndexException>(() => cyclic.Closure(["a"])).Reason);
        Assert.Equal(ModuleIndexError.DependencyMalformed, Assert.Throws<ModuleIndexException>(() => ModuleDependencies.Parse("no colon here\n")).Reason);
        Assert.Equal(ModuleIndexError.DependencyMalformed, Assert.Throws<ModuleIndexException>(() => ModuleDependencies.Parse("a.ko:\na.ko:\n")).Reason);
        // Two paths, one module name (CsCheck found "--<`//m.ko:" beside "m.ko:"): "load m" would be ambiguous.
        Assert.Equal(ModuleIndexError.DependencyMalformed, Assert.Throws<ModuleIndexException>(() => ModuleDependencies.Parse("--<`//m.ko:\nm.ko:\n")).Reason);
        Assert.Equal(ModuleIndexError.DependencyMalformed, Assert.Throws<ModuleIndexException>(() => ModuleDependencies.Parse("kernel/a/x-y.ko.xz:\nkernel/b/x_y.ko:\n")).Reason);
        Assert.Equal(ModuleIndexError.AliasMalformed, Assert.Throws<ModuleIndexException>(() => ModuleAliases.Parse("alias pci:v* \n")).Reason);
        Assert.Equal(ModuleIndexError.AliasMalformed, Assert.Throws<ModuleIndexException>(() => ModuleAliases.Parse("options x y\n")).Reason);
        Assert.Equal(ModuleIndexError.AliasMalformed, Assert.Throws<ModuleIndexException>(() => ModuleAliases.Parse("alias pci:v[12 m\n")).Reason);
        Assert.Equal(ModuleIndexError.NotText, Assert.Throws<ModuleIndexException>(() => ModuleAliases.Parse(new byte[] { 0x61, 0xFF, 0x0A })).Reason);
        Assert.Equal(ModuleIndexError.NotText, Assert.Throws<ModuleIndexException>(() => ModuleDependencies.Parse("a.ko:\0\n")).Reason);
    }

    [Fact]
    public void Limits_are_typed_errors()
    {
        Assert.Equal(ModuleIndexError.LineTooLong, Assert.Throws<ModuleIndexException>(
            () => ModuleDependencies.Parse("a.ko:" + new string(' ', MachineLimits.MaxModuleIndexLineBytes))).Reason);
        Assert.Equal(ModuleIndexError.TooLarge, Assert.Throws<ModuleIndexException>(
            () => ModuleAliases.Parse(new byte[MachineLimits.MaxModuleIndexBytes + 1])).Reason);
        Assert.Equal(ModuleIndexError.TooLarge, Assert.Throws<ModuleIndexException>(
            () => ModuleAliases.Parse(new string('\n', MachineLimits.MaxModuleIndexLines + 1))).Reason);
        var chain = new StringBuilder();
        for (int i = 0; i < 100; i++) chain.Append($"m{i}.ko: m{i + 1}.ko\n");
        chain.Append("m100.ko:\n");
        Assert.Equal(ModuleIndexError.TooLarge, Assert.Throws<ModuleIndexException>(() => ModuleDependencies.Parse(chain.ToString()).Closure(["m0"])).Reason);
        Assert.Equal(ModuleIndexError.ModaliasMalformed, Assert.Throws<ModuleIndexException>(() => Modalias.Parse(new byte[MachineLimits.MaxModaliasBytes + 1])).Reason);
    }

    [Theory]
    [InlineData("pci:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00", "pci:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00\n")]
    [InlineData("virtio:d00000001v00001AF4", "virtio:d00000001v00001AF4")]
    public void A_sysfs_modalias_is_read_without_its_newline(string expected, string file) =>
        Assert.Equal(expected, Modalias.Parse(Encoding.ASCII.GetBytes(file)));

    [Theory, InlineData(""), InlineData("\n"), InlineData("nocolon"), InlineData(":x"), InlineData("pci:v*"), InlineData("pci:a b"), InlineData("pci:[")]
    public void Malformed_modaliases_are_refused(string file) =>
        Assert.Equal(ModuleIndexError.ModaliasMalformed, Assert.Throws<ModuleIndexException>(() => Modalias.Parse(Encoding.ASCII.GetBytes(file))).Reason);

    [Theory]
    // Real patterns from Debian 12's modules.alias against what QEMU's devices report.
    [InlineData("pci:v00001AF4d*sv*sd*bc*sc*i*", "pci:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00", true)]
    [InlineData("pci:v00001AF4d*sv*sd*bc*sc*i*", "pci:v00008086d00001237sv00001AF4sd00001100bc06sc00i00", false)]
    [InlineData("virtio:d00000001v*", "virtio:d00000001v00001AF4", true)]
    [InlineData("virtio:d00000001v*", "virtio:d00000002v00001AF4", false)]
    [InlineData("acpi*:LNRO0005:*", "acpi:LNRO0005:", true)]
    [InlineData("dmi*:svn*[Ff]ujitsu*:pn*", "dmi:bvnSeaBIOS:svnFujitsu:pnX:", true)]
    [InlineData("dmi*:svn*[Ff]ujitsu*:pn*", "dmi:bvnSeaBIOS:svnQEMU:pnStandardPC:", false)]
    [InlineData("usb:v*p*d*dc*dsc*dp*ic0[2-3]isc*ip*in*", "usb:v1D6Bp0002d0601dc09dsc00dp01ic03isc00ip00in00", true)]
    [InlineData("usb:v*p*d*dc*dsc*dp*ic0[!2-3]isc*ip*in*", "usb:v1D6Bp0002d0601dc09dsc00dp01ic03isc00ip00in00", false)]
    [InlineData("x?z", "xyz", true)]
    [InlineData("x?z", "xz", false)]
    [InlineData("a[]]b", "a]b", true)]
    [InlineData("a[b", "a[b", false)]
    [InlineData("*", "", true)]
    [InlineData("a*b*c", "aXbYbZc", true)]
    [InlineData("a*b*c", "aXbYbZ", false)]
    public void Glob_patterns_match_as_fnmatch_does(string pattern, string text, bool matches) =>
        Assert.Equal(matches, Modalias.Matches(pattern, text));

    [Fact]
    public void Glob_matching_agrees_with_a_regex_on_random_patterns()
    {
        var pattern = Gen.OneOf(Gen.Const("*"), Gen.Const("?"), Gen.Const("a"), Gen.Const("b"), Gen.Const("[ab]"), Gen.Const("[!a]"), Gen.Const("[a-c]"))
            .Array[0, 8].Select(parts => string.Concat(parts));
        var text = Gen.Char["abcd"].Array[0, 10].Select(c => new string(c));
        Gen.Select(pattern, text).Sample((p, t) =>
        {
            string regex = "^" + p.Replace("[!", "[^").Replace("*", ".*").Replace("?", ".") + "$";
            Assert.Equal(System.Text.RegularExpressions.Regex.IsMatch(t, regex), Modalias.Matches(p, t));
        }, iter: 5_000);
    }

    [Theory, InlineData("pci:v00001AF4d*", "pci"), InlineData("acpi*:LNRO0005:*", "acpi"), InlineData("dmi*:svn*", "dmi"),
     InlineData("fs-virtiofs", null), InlineData("rtnl-link-wireguard", null), InlineData("devname:fuse", null), InlineData("*:x", null)]
    public void The_bus_of_an_alias_names_its_devices(string pattern, string? bus) => Assert.Equal(bus, Modalias.BusOf(pattern));

    [Fact]
    public void Aliases_match_devices_and_write_a_subset()
    {
        var aliases = ModuleAliases.Parse("""
            # Aliases extracted from modules themselves.
            alias pci:v00001AF4d*sv*sd*bc*sc*i* virtio_pci
            alias virtio:d00000001v* virtio_net
            alias rtnl-link-wireguard wireguard
            alias net-pf-16-proto-16-family-wireguard wireguard
            alias fs-virtiofs virtiofs
            alias virtio:d0000001Av* virtiofs
            """);
        Assert.Equal(["virtio_pci"], aliases.Match("pci:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00"));
        Assert.Equal(["virtio_net"], aliases.Match("virtio:d00000001v00001AF4"));
        Assert.Empty(aliases.Match("rtnl-link-wireguard"));   // not a device alias: no device can ask for it
        Assert.Equal(new HashSet<string> { "virtio_pci", "virtio_net", "virtiofs" }, aliases.DeviceModules());
        string subset = aliases.Subset(new HashSet<string> { "virtio_net", "wireguard" });
        var again = ModuleAliases.Parse(subset);
        Assert.Equal(["virtio:d00000001v*", "rtnl-link-wireguard", "net-pf-16-proto-16-family-wireguard"], again.Entries.Select(e => e.Pattern));
    }

    [Fact]
    public void Arbitrary_index_text_parses_or_is_a_typed_error()
    {
        var word = Gen.OneOf(Gen.Const("alias"), Gen.Const("m.ko:"), Gen.Const("a.ko"), Gen.Const("pci:v*"), Gen.Const("[x"), Gen.Const(" "), Gen.Const("#"),
            Gen.Const("\n"), Gen.Const("\t"), Gen.Const("\r"), Gen.Const("-"), Gen.Const("é"), Gen.String[0, 4]);
        word.Array[0, 30].Select(w => string.Concat(w)).Sample(text =>
        {
            try { ModuleAliases.Parse(text); } catch (ModuleIndexException) { }
            try
            {
                var deps = ModuleDependencies.Parse(text);
                foreach (string path in deps.Paths.Take(3))
                {
                    try { Assert.Equal(path, deps.Closure([ModuleDependencies.NameOf(path)])[^1]); }
                    catch (ModuleIndexException e) { Assert.True(e.Reason is ModuleIndexError.ModuleNotFound or ModuleIndexError.DependencyCycle or ModuleIndexError.TooLarge); }
                }
            }
            catch (ModuleIndexException) { }
        }, iter: 5_000);
    }
}
