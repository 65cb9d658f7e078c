using System.Diagnostics;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using Tabula.Testing;

namespace Tabula.Lab.Tests;

/// <summary>
/// The lab internet without relays, in namespaces of its own (unique per test run): the echo host answers a customer's
/// curl over both families with the customer's address, streams /bytes/N intact and refuses bad requests; its dnsmasq
/// answers A and AAAA for echo.tabula-lab.test; both customers reach the relays' public gateway; `down`'s namespace
/// cleanup removes all of it. And the request parser on its own: limits and refusals, never an exception.
/// </summary>
public sealed class LabInternetTests(ITestOutputHelper output)
{
    static (int Code, string Stdout, string Stderr) Run(params string[] command)
    {
        var start = new ProcessStartInfo(command[0]) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in command.Skip(1))
            start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromSeconds(60)))
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
        }
        return (process.ExitCode, stdout.Result, stderr.Result);
    }

    [PrivilegedFact("ip", "dnsmasq", "curl", "dig")]
    public async Task Echo_host_dns_and_customers_on_the_lab_internet()
    {
        Prerequisites.Require(needsRoot: true, "ip", "dnsmasq", "curl", "dig");
        string ns = $"tabula-lit-{Environment.ProcessId}-{RandomNumberGenerator.GetHexString(4, lowercase: true)}";
        string pidFile = Path.Combine(Path.GetTempPath(), ns + ".pid");
        using var stop = new CancellationTokenSource();
        Process? dns = null;
        try
        {
            LabNetwork.Create(ns, 0);
            LabInternet.Create(ns);
            string echoNs = LabInternet.EchoNamespace(ns), c1 = LabInternet.CustomerNamespace(ns, 1), c2 = LabInternet.CustomerNamespace(ns, 2);
            var server = LabEcho.RunAsync(echoNs, LabInternet.EchoHttpPort, output.WriteLine, stop.Token);
            var dnsCommand = LabInternet.EchoDns(ns, pidFile);
            var start = new ProcessStartInfo(dnsCommand[0]) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
            foreach (string a in dnsCommand.Skip(1))
                start.ArgumentList.Add(a);
            dns = Process.Start(start)!;
            var clock = Stopwatch.StartNew();
            while (!LabNetwork.CanConnect(echoNs, new IPEndPoint(LabInternet.Echo4, LabInternet.EchoHttpPort)) && clock.Elapsed < TimeSpan.FromSeconds(10))
                await Task.Delay(100);

            // /ip: each customer is seen with its own address, over IPv4 and IPv6.
            for (int n = 1; n <= LabInternet.Customers; n++)
            {
                var (v4, v6) = LabInternet.Customer(n);
                string customer = LabInternet.CustomerNamespace(ns, n);
                Assert.Equal(v4.ToString(), Curl(customer, $"http://{LabInternet.Echo4}/ip").Body);
                Assert.Equal(v6.ToString(), Curl(customer, $"http://[{LabInternet.Echo6}]/ip").Body);
            }

            // /bytes/N: exactly N bytes, byte i = i mod 251, over both families.
            string file = Path.Combine(Path.GetTempPath(), ns + ".bytes");
            try
            {
                const int n5 = 5_000_000;
                foreach (string url in new[] { $"http://{LabInternet.Echo4}/bytes/{n5}", $"http://[{LabInternet.Echo6}]/bytes/{n5}" })
                {
                    var fetched = Run(LabNetwork.Exec(c2, ["curl", "-sS", "--max-time", "30", "-o", file, "-w", "%{http_code}", url]));
                    Assert.Equal("200", fetched.Stdout);
                    byte[] bytes = File.ReadAllBytes(file);
                    Assert.Equal(n5, bytes.Length);
                    for (int i = 0; i < bytes.Length; i++)
                        if (bytes[i] != LabEcho.ByteAt(i))
                            Assert.Fail($"byte {i} is {bytes[i]}, expected {LabEcho.ByteAt(i)}");
                }
            }
            finally
            {
                File.Delete(file);
            }
            Assert.Equal(("200", ""), Curl(c1, $"http://{LabInternet.Echo4}/bytes/0"));
            Assert.Equal("400", Curl(c1, $"http://{LabInternet.Echo4}/bytes/100000001").Status);
            Assert.Equal("400", Curl(c1, $"http://{LabInternet.Echo4}/bytes/-1").Status);
            Assert.Equal("400", Curl(c1, $"http://{LabInternet.Echo4}/bytes/1e3").Status);
            Assert.Equal("404", Curl(c1, $"http://{LabInternet.Echo4}/").Status);
            Assert.Equal("405", Run(LabNetwork.Exec(c1, ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", $"http://{LabInternet.Echo4}/ip"])).Stdout);
            // The largest /bytes is announced, not buffered: HEAD gives its length at once.
            var head = Run(LabNetwork.Exec(c1, ["curl", "-sS", "-I", "--max-time", "5", $"http://{LabInternet.Echo4}/bytes/{LabEcho.MaxBytes}"]));
            Assert.Contains($"Content-Length: {LabEcho.MaxBytes}", head.Stdout, StringComparison.Ordinal);

            // DNS: A and AAAA for the echo host's name, from a customer.
            Assert.Equal(LabInternet.Echo4.ToString(), Dig(c1, "A"));
            Assert.Equal(LabInternet.Echo6.ToString(), Dig(c1, "AAAA"));

            // The relays' public gateway is reachable from both customers (the lab namespace routes between them).
            foreach (string customer in new[] { c1, c2 })
            {
                Assert.Equal(0, Run(LabNetwork.Exec(customer, ["ping", "-c", "1", "-W", "2", LabInternet.PublicGateway4.ToString()])).Code);
                Assert.Equal(0, Run(LabNetwork.Exec(customer, ["ping", "-6", "-c", "1", "-W", "2", LabInternet.PublicGateway6.ToString()])).Code);
            }
            stop.Cancel();
            await server.WaitAsync(TimeSpan.FromSeconds(10));
        }
        finally
        {
            stop.Cancel();
            if (dns is { HasExited: false })
            {
                dns.Kill();
                dns.WaitForExit(5000);
            }
            dns?.Dispose();
            File.Delete(pidFile);
            LabInternet.Delete(ns);
            LabNetwork.Delete(ns);
        }
        foreach (string name in LabInternet.Namespaces(ns).Append(ns))
            Assert.False(File.Exists($"/run/netns/{name}"), $"namespace {name} is still there");
    }

    static (string Status, string Body) Curl(string ns, string url)
    {
        var result = Run(LabNetwork.Exec(ns, ["curl", "-sS", "--max-time", "10", "-w", "\n%{http_code}", url]));
        int nl = result.Stdout.LastIndexOf('\n');
        Assert.True(nl >= 0, $"curl {url}: {result.Stderr}");
        return (result.Stdout[(nl + 1)..], result.Stdout[..nl]);
    }

    static string Dig(string ns, string type) =>
        Run(LabNetwork.Exec(ns, ["dig", "+short", "+time=2", "+tries=2", "@" + LabInternet.Echo4, LabInternet.EchoName, type])).Stdout.Trim();

    [Theory]
    [InlineData("GET /ip HTTP/1.1\r\nHost: x\r\n\r\n", "/ip", 0L, null)]
    [InlineData("HEAD /bytes/7 HTTP/1.0\r\n\r\n", "/bytes", 7L, null)]
    [InlineData("GET /bytes/100000000?x=1 HTTP/1.1\r\n\r\n", "/bytes", 100_000_000L, null)]
    [InlineData("GET /bytes/100000001 HTTP/1.1\r\n\r\n", "", 0L, EchoRequestError.BadCount)]
    [InlineData("GET /bytes/0000000001 HTTP/1.1\r\n\r\n", "", 0L, EchoRequestError.BadCount)]
    [InlineData("GET /bytes/+5 HTTP/1.1\r\n\r\n", "", 0L, EchoRequestError.BadCount)]
    [InlineData("GET /bytes/ HTTP/1.1\r\n\r\n", "", 0L, EchoRequestError.BadCount)]
    [InlineData("GET /bytes/٣ HTTP/1.1\r\n\r\n", "", 0L, EchoRequestError.BadCount)]
    [InlineData("GET / HTTP/1.1\r\n\r\n", "", 0L, EchoRequestError.NotFound)]
    [InlineData("DELETE /ip HTTP/1.1\r\n\r\n", "", 0L, EchoRequestError.MethodNotAllowed)]
    [InlineData("GET /ip\r\n\r\n", "", 0L, EchoRequestError.Malformed)]
    [InlineData("GET /ip HTTP/1.1 extra\r\n\r\n", "", 0L, EchoRequestError.Malformed)]
    [InlineData("GET /ip SPDY/3\r\n\r\n", "", 0L, EchoRequestError.Malformed)]
    [InlineData("GET /ip HTTP/1.1", "", 0L, EchoRequestError.Malformed)]
    [InlineData("", "", 0L, EchoRequestError.Malformed)]
    public void Echo_requests_parse_or_are_refused_with_a_reason(string head, string path, long count, EchoRequestError? error)
    {
        var request = EchoRequest.Parse(Encoding.UTF8.GetBytes(head));
        Assert.Equal((path, count, error), (request.Path, request.Count, request.Error));
    }

    [Fact]
    public void Echo_request_parser_never_throws_on_random_bytes()
    {
        var random = new Random(15);
        for (int i = 0; i < 20_000; i++)
        {
            byte[] bytes = new byte[random.Next(0, 300)];
            random.NextBytes(bytes);
            if (i % 2 == 0 && bytes.Length > 12)
                "GET /bytes/"u8.CopyTo(bytes);
            _ = EchoRequest.Parse(bytes);
        }
    }

    [Fact]
    public void Relay_public_ipv6_is_the_slaac_address_of_its_mac()
    {
        Assert.Equal(IPAddress.Parse("2001:db8:64::5054:ff:fe7a:b101"), LabInternet.RelayPublic6(0));
        Assert.Equal(IPAddress.Parse("2001:db8:64::5054:ff:fe7a:b102"), LabInternet.RelayPublic6(1));
        Assert.Equal(IPAddress.Parse("198.51.100.12"), LabInternet.RelayPublic4(1));
    }
}
