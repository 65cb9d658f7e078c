using System.Net.Http.Json;
using System.Text.Json;
using Tabula.Fleet.Api;
using Tabula.Fleet.Tests.Support;

namespace Tabula.Fleet.Tests;

/// <summary>`tabula fleet rollout …` as a real child process against a real controller (issue 18).</summary>
public sealed class RolloutCliTests(SqliteFleetFixture fleet) : IClassFixture<SqliteFleetFixture>
{
    private Task<ProcessOutput> Tabula(string token, params string[] args) =>
        TabulaCli.RunAsync([.. args, "--server", fleet.Host.Address.ToString()],
            environment: new Dictionary<string, string> { ["TABULA_FLEET_TOKEN"] = token });

    [Fact]
    public async Task Rollout_verbs_start_by_release_print_the_apis_json_pause_resume_abort_and_explain_bad_usage()
    {
        var (machineClass, old, next) = await RolloutTests.ReleasesAsync(fleet.Host.Client(fleet.AdminToken));
        for (int i = 0; i < 2; i++)
            await new RolloutRelay(fleet.Host, fleet.EnrollmentToken, fleet.OperatorToken, machineClass).DeployAsync(old);

        var (exit, _, error) = await Tabula(fleet.AdminToken, "fleet", "rollout", "start", "--channel", "stable", "--release", "2", "--digest", next, "--reason", "x");
        Assert.Equal(2, exit);
        Assert.Contains("--release N or --digest D", error);
        (exit, _, error) = await Tabula(fleet.AdminToken, "fleet", "rollout", "start", "--channel", "stable", "--release", "2", "--max-unavailable", "150%", "--reason", "x");
        Assert.Equal(2, exit);
        Assert.Contains("1%..100%", error);
        (exit, _, error) = await Tabula(fleet.AdminToken, "fleet", "rollout", "start", "--channel", "stable", "--release", "2");
        Assert.Equal(2, exit);
        Assert.Contains("--reason", error);
        (exit, _, error) = await Tabula(fleet.OperatorToken, "fleet", "rollout", "start", "--channel", "stable", "--release", "2", "--reason", "x");
        Assert.Equal(1, exit);
        Assert.Contains("forbidden", error);

        (exit, var output, error) = await Tabula(fleet.AdminToken, "fleet", "rollout", "start", "--channel", "stable", "--release", "2",
            "--canary", "1", "--max-unavailable", "50%", "--drain-seconds", "30", "--per-location-min", "1", "--reason", "r2", "--json");
        Assert.True(exit == 0, error);
        var started = JsonSerializer.Deserialize(output, FleetJson.Default.RolloutView)!;
        Assert.Equal(("running", next, 2L, 50, 2), (started.State, started.Digest, started.Release!.Value, started.MaxUnavailable!.Value, started.Machines.Count));

        (exit, output, error) = await Tabula(fleet.ViewerToken, "fleet", "rollout", "status", "--json");
        Assert.True(exit == 0, error);
        string api = await fleet.Host.Client(fleet.ViewerToken).GetStringAsync("/api/v1/rollouts/latest");
        Assert.Equal(Canonical(api), Canonical(output));

        (exit, output, error) = await Tabula(fleet.OperatorToken, "fleet", "rollout", "pause", "--reason", "watching");
        Assert.True(exit == 0, error);
        Assert.Contains($"rollout {started.Id}: paused", output);
        (exit, output, error) = await Tabula(fleet.OperatorToken, "fleet", "rollout", "pause", "--reason", "again");
        Assert.Equal(1, exit);
        Assert.Contains("illegal_transition", error);
        (exit, _, error) = await Tabula(fleet.OperatorToken, "fleet", "rollout", "resume", "--reason", "fine");
        Assert.True(exit == 0, error);
        (exit, output, error) = await Tabula(fleet.OperatorToken, "fleet", "rollout", "abort", "--reason", "done testing");
        Assert.True(exit == 0, error);
        Assert.Contains("aborted", output);
        (exit, output, error) = await Tabula(fleet.ViewerToken, "fleet", "rollout", "status");
        Assert.True(exit == 0, error);
        Assert.Contains("canary", output);
        (exit, output, _) = await Tabula(fleet.ViewerToken, "fleet", "rollout", "start", "--help");
        Assert.Contains("--per-location-min", output);
    }

    /// <summary>The JSON with its updated_at dropped (the engine may touch the rollout between the two reads).</summary>
    private static string Canonical(string json)
    {
        var node = System.Text.Json.Nodes.JsonNode.Parse(json)!.AsObject();
        node.Remove("updated_at");
        return node.ToJsonString();
    }
}
