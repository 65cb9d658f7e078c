using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Npgsql;

namespace Tabula.Testing;

/// <summary>
/// A throwaway PostgreSQL cluster, started once per test process from Debian's binaries (initdb, pg_ctl)
/// in a temporary directory on a free loopback port, and stopped when the process exits. As root it runs
/// as the postgres user (PostgreSQL refuses root). Missing binaries: tests skip on a laptop, fail under CI.
/// Each test project that uses it declares a collection whose fixture calls <see cref="StopShared"/> (xUnit collection
/// definitions live in the test assembly).
/// </summary>
public sealed class PostgresServer
{
    private static readonly Lazy<Task<PostgresServer?>> Shared = new(StartAsync);
    private readonly string directory, bin;
    public int Port { get; }

    private PostgresServer(string directory, string bin, int port) { this.directory = directory; this.bin = bin; Port = port; }

    public static Task<PostgresServer?> SharedAsync() => Shared.Value;

    public static string? FindBin() =>
        Directory.Exists("/usr/lib/postgresql")
            ? Directory.GetDirectories("/usr/lib/postgresql").OrderDescending().Select(d => Path.Combine(d, "bin"))
                .FirstOrDefault(d => File.Exists(Path.Combine(d, "pg_ctl")))
            : null;

    private static async Task<PostgresServer?> StartAsync()
    {
        string? bin = FindBin();
        if (bin is null)
        {
            if (Prerequisites.IsCi) throw new InvalidOperationException("PostgreSQL is required under CI (scripts/apt-packages: postgresql)");
            return null;
        }
        string dir = Directory.CreateTempSubdirectory("tabula-pg-").FullName;
        bool root = Environment.UserName == "root" || Environment.GetEnvironmentVariable("USER") == "root";
        if (root) await RunAsync("chown", ["postgres:postgres", dir], root: false);
        int port = FreePort();
        string data = Path.Combine(dir, "data");
        await RunAsync(Path.Combine(bin, "initdb"), ["-D", data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync", "--no-instructions"], root);
        await RunAsync(Path.Combine(bin, "pg_ctl"), ["-D", data, "-l", Path.Combine(dir, "log"), "-w", "-t", "60", "-o",
            $"-p {port} -k {dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300",
            "start"], root);
        var server = new PostgresServer(dir, bin, port, root);
        AppDomain.CurrentDomain.ProcessExit += (_, _) => server.Stop();   // fallback; PostgresCollection stops it first
        return server;
    }

    private readonly bool root;
    private int stopped;

    private PostgresServer(string directory, string bin, int port, bool root) : this(directory, bin, port) => this.root = root;

    /// <summary>Stops the shared cluster if it was started (called when the last PostgreSQL test class is done).</summary>
    public static void StopShared()
    {
        if (Shared.IsValueCreated && Shared.Value.IsCompletedSuccessfully && Shared.Value.Result is { } server) server.Stop();
    }

    private void Stop()
    {
        if (Interlocked.Exchange(ref stopped, 1) != 0) return;
        try
        {
            using var stop = Process.Start(Command(Path.Combine(bin, "pg_ctl"), ["-D", Path.Combine(directory, "data"), "-m", "immediate", "-w", "stop"], root));
            stop?.WaitForExit(20_000);
            Directory.Delete(directory, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.ComponentModel.Win32Exception) { }
    }

    /// <summary>A fresh, empty database on the shared cluster.</summary>
    public async Task<string> CreateDatabaseAsync()
    {
        string name = "t" + Guid.NewGuid().ToString("N")[..12];
        await using (var connection = new NpgsqlConnection($"Host=127.0.0.1;Port={Port};Username=postgres;Database=postgres;Pooling=false"))
        {
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand($"CREATE DATABASE {name}", connection);
            await command.ExecuteNonQueryAsync();
        }
        return $"postgres:Host=127.0.0.1;Port={Port};Username=postgres;Database={name};Maximum Pool Size=50";
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static ProcessStartInfo Command(string file, string[] args, bool root)
    {
        var info = new ProcessStartInfo(root ? "runuser" : file) { RedirectStandardOutput = true, RedirectStandardError = true };
        if (root) { info.ArgumentList.Add("-u"); info.ArgumentList.Add("postgres"); info.ArgumentList.Add("--"); info.ArgumentList.Add(file); }
        foreach (string a in args) info.ArgumentList.Add(a);
        return info;
    }

    private static async Task RunAsync(string file, string[] args, bool root)
    {
        using var process = Process.Start(Command(file, args, root))!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"{Path.GetFileName(file)} failed ({process.ExitCode}): {await stderr}{await stdout}");
    }
}
