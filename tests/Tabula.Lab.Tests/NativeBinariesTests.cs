namespace Tabula.Lab.Tests;

/// <summary>
/// When tabula-boot / tabula-relay count as stale: their sources are read from the csproj ProjectReference closure, so a
/// project added to a reference (Images was missing from the old hand-kept list) can never be forgotten.
/// </summary>
public sealed class NativeBinariesTests : IDisposable
{
    readonly string fake = Directory.CreateTempSubdirectory("tabula-closure-").FullName;

    public void Dispose() => Directory.Delete(fake, recursive: true);

    static string Repository => NativeBinaries.RepositoryRoot() ?? throw new InvalidOperationException("tests run inside the checkout");

    static IReadOnlyList<string> Closure(NativeBinaries.Program program) =>
        [.. NativeBinaries.ProjectClosure(Repository, program.Project).Select(f => Path.GetRelativePath(Repository, f))];

    [Fact]
    public void The_publish_lock_is_a_flock_another_process_waits_for()
    {
        Tabula.Testing.Prerequisites.Require(needsRoot: false, "flock");
        string lockFile = Path.Combine(fake, "out", ".publish-tabula-boot.lock");
        using (NativeBinaries.LockPublish(fake, "tabula-boot", TimeSpan.FromSeconds(1)))
        {
            // Another process (util-linux flock, non-blocking) is refused while it is held; so is a second holder here.
            Assert.Equal(1, FlockExitCode(lockFile));
            var e = Assert.Throws<LabException>(() => NativeBinaries.LockPublish(fake, "tabula-boot", TimeSpan.FromSeconds(1)));
            Assert.Contains("another process has been publishing tabula-boot", e.Message);
        }
        Assert.Equal(0, FlockExitCode(lockFile));
        using (NativeBinaries.LockPublish(fake, "tabula-boot", TimeSpan.FromSeconds(1))) { }
    }

    static int FlockExitCode(string file)
    {
        using var flock = System.Diagnostics.Process.Start("flock", ["-n", file, "true"]);
        flock.WaitForExit();
        return flock.ExitCode;
    }

    [Fact]
    public void Boot_closure_is_read_from_the_csproj_files()
    {
        var boot = Closure(NativeBinaries.Boot);
        Assert.Equal("src/Tabula.Boot", boot[0]);
        Assert.Contains("src/Tabula.Packaging", boot);
        Assert.Contains("src/Tabula.Linux", boot);
        Assert.DoesNotContain("src/Tabula.Images", boot);     // Boot no longer references Images (cpio moved to Packaging)
        Assert.All(boot, f => Assert.True(File.Exists(Path.Combine(Repository, f, Path.GetFileName(f) + ".csproj")), f));
    }

    [Fact]
    public void Relay_closure_holds_every_library_it_links()
    {
        var relay = Closure(NativeBinaries.Relay);
        foreach (string library in new[] { "src/Tabula.Relay", "src/Tabula.Packaging", "src/Tabula.Linux", "src/Tabula.WireGuard", "src/Tabula.Fleet.Protocol" })
            Assert.Contains(library, relay);
        Assert.Equal(relay.Count, relay.Distinct().Count());
    }

    string Project(string name, params string[] references)
    {
        string folder = Directory.CreateDirectory(Path.Combine(fake, "src", name)).FullName;
        File.WriteAllText(Path.Combine(folder, name + ".csproj"),
            $"<Project Sdk=\"Microsoft.NET.Sdk\"><ItemGroup>{string.Concat(references.Select(r => $"<ProjectReference Include=\"..\\{r}\\{r}.csproj\" />"))}</ItemGroup></Project>");
        File.WriteAllText(Path.Combine(folder, "Code.cs"), "// code");
        File.SetLastWriteTimeUtc(Path.Combine(folder, "Code.cs"), new DateTime(2020, 1, 1, 0, 0, 0, DateTimeKind.Utc));
        File.SetLastWriteTimeUtc(Path.Combine(folder, name + ".csproj"), new DateTime(2020, 1, 1, 0, 0, 0, DateTimeKind.Utc));
        return folder;
    }

    [Fact]
    public void A_change_two_references_deep_makes_the_binary_stale_and_an_unreferenced_project_does_not()
    {
        Project("App", "Middle");
        Project("Middle", "Leaf", "Leaf");   // a repeated reference is followed once
        string leaf = Project("Leaf");
        string other = Project("Other");
        var program = new NativeBinaries.Program("app", "src/App", "app", "TABULA_TEST_APP");

        Assert.Equal(["App", "Middle", "Leaf"], NativeBinaries.ProjectClosure(fake, program.Project).Select(Path.GetFileName));
        Assert.Equal(new DateTime(2020, 1, 1, 0, 0, 0, DateTimeKind.Utc), NativeBinaries.NewestSource(fake, program));

        var changed = new DateTime(2024, 6, 1, 0, 0, 0, DateTimeKind.Utc);
        File.SetLastWriteTimeUtc(Path.Combine(other, "Code.cs"), changed.AddDays(1));
        File.WriteAllText(Path.Combine(leaf, "New.cs"), "// new");
        File.SetLastWriteTimeUtc(Path.Combine(leaf, "New.cs"), changed);
        Assert.Equal(changed, NativeBinaries.NewestSource(fake, program));

        File.WriteAllText(Path.Combine(fake, "Directory.Packages.props"), "<Project />");
        Assert.True(NativeBinaries.NewestSource(fake, program) > changed);   // a package version bump rebuilds too
    }

    [Fact]
    public void A_reference_that_cannot_be_followed_is_an_error_not_a_silently_shorter_list()
    {
        string folder = Project("App");
        File.WriteAllText(Path.Combine(folder, "App.csproj"),
            "<Project><ItemGroup><ProjectReference Include=\"$(Elsewhere)/X.csproj\" /></ItemGroup></Project>");
        Assert.Throws<LabException>(() => NativeBinaries.ProjectClosure(fake, "src/App"));
        Assert.Throws<LabException>(() => NativeBinaries.ProjectClosure(fake, "src/Missing"));
    }
}
