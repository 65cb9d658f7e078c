namespace Tabula.Cli.Tests;

/// <summary>
/// `tabula image stboot` without --init in a fresh checkout publishes tabula-boot itself, through the code path `lab up`
/// uses (NativeBinaries), instead of stopping with "no tabula-boot binary found". The checkout is a small stand-in
/// (Tabula.slnx, src/Tabula.Boot with a plain program named tabula-boot), so the publish takes seconds, not a NativeAOT build.
/// </summary>
public sealed class ImageStbootPublishTests : IDisposable
{
    readonly Scratch scratch = new();

    public void Dispose() => scratch.Dispose();

    [Fact]
    public void Without_init_a_fresh_checkout_gets_tabula_boot_published_then_reused_until_a_source_changes()
    {
        string checkout = Directory.CreateDirectory(scratch["checkout"]).FullName;
        File.WriteAllText(Path.Combine(checkout, "Tabula.slnx"), "<Solution />");
        string boot = Directory.CreateDirectory(Path.Combine(checkout, "src", "Tabula.Boot")).FullName;
        File.WriteAllText(Path.Combine(boot, "Tabula.Boot.csproj"), """
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup><OutputType>Exe</OutputType><TargetFramework>net10.0</TargetFramework><AssemblyName>tabula-boot</AssemblyName>
                <ImplicitUsings>enable</ImplicitUsings><SelfContained>false</SelfContained></PropertyGroup>
            </Project>
            """);
        File.WriteAllText(Path.Combine(boot, "Program.cs"), "System.Console.WriteLine(\"stand-in\");\n");
        Tabula.Ok("keygen", "root", "--out", scratch["root"]);
        Tabula.Ok("trustpolicy", "create", "--roots", scratch["root.pem"], "--threshold", "1", "--fetch-method", "initramfs", "--out", scratch["trust"]);
        string[] args = ["image", "stboot", "--trust-policy", scratch["trust"], "--kernel-release", "6.1.0-test", "--out", scratch["stboot.cpio.gz"]];
        Assert.Null(Environment.GetEnvironmentVariable("TABULA_BOOT_BINARY"));   // it would win over the checkout

        var first = TabulaCli.Run(args, checkout, timeout: TimeSpan.FromMinutes(10));

        Assert.True(first.ExitCode == 0, first.ToString());
        Assert.Contains("publishing tabula-boot", first.Stderr);
        string published = Path.Combine(checkout, "out", "boot", "tabula-boot");
        Assert.True(File.Exists(published));
        Assert.Contains($"({published})", first.Stdout);

        var second = TabulaCli.Run(args, checkout, timeout: TimeSpan.FromMinutes(10));
        Assert.True(second.ExitCode == 0, second.ToString());
        Assert.DoesNotContain("publishing", second.Stderr);       // up to date: reused

        File.SetLastWriteTimeUtc(Path.Combine(boot, "Program.cs"), DateTime.UtcNow.AddMinutes(1));
        var third = TabulaCli.Run(args, checkout, timeout: TimeSpan.FromMinutes(10));
        Assert.True(third.ExitCode == 0, third.ToString());
        Assert.Contains("publishing tabula-boot", third.Stderr);  // a source newer than the binary: published again
    }
}
