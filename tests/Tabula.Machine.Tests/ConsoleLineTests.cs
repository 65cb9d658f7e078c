using CsCheck;
using Tabula.Machine.Reporting;

namespace Tabula.Machine.Tests;

public sealed class ConsoleLineTests
{
    [Fact]
    public void Written_lines_parse_back_with_program_key_time_and_fields()
    {
        var console = new StringWriter();
        var writer = new ConsoleWriter(ConsoleLine.Relay, console, TimeProvider.System, ringCapacity: 2);
        var written = writer.Write("enroll", "machine=3f5a fingerprint=1a2b-3c4d state=awaiting (staff compare)");
        writer.Write("FAILED", "stage=fetch reason=HttpStatus url=https://x/os.json detail=\"HTTP 404 not found\" round=1/8");
        writer.Write("note:dhcp", "two\nlines");

        string[] lines = console.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(3, lines.Length);
        var enroll = ConsoleLine.TryParse(lines[0]);
        Assert.Equal(written, enroll);
        Assert.True(enroll!.Is(ConsoleLine.Relay, "enroll"));
        Assert.Equal("3f5a", enroll.Field("machine"));
        Assert.Equal("awaiting", enroll.Field("state"));
        Assert.Null(enroll.Field("fleet"));
        var failed = ConsoleLine.TryParse(lines[1])!;
        Assert.Equal("HTTP 404 not found", failed.Field("detail"));
        Assert.Equal("1/8", failed.Field("round"));
        Assert.Equal("fetch", failed.Field("stage"));
        Assert.Equal("two | lines", ConsoleLine.TryParse(lines[2])!.Detail);
        Assert.Equal(2, writer.Recent().Count);   // the ring keeps the newest two
    }

    [Theory]
    [InlineData("tabula-boot: stage:network t=1487ms took=210ms nic=eth0 static address=10.99.2.2/24", "tabula-boot", "stage:network", 1487)]
    [InlineData("\r[    3.1] garbage tabula-relay: sync t=12ms add revision=3 peers=1", "tabula-relay", "sync", 12)]
    [InlineData("tabula-boot: kexec t=0ms", "tabula-boot", "kexec", 0)]
    public void Lines_from_a_serial_console_parse(string text, string program, string key, long ms)
    {
        var line = ConsoleLine.TryParse(text);
        Assert.NotNull(line);
        Assert.Equal((program, key, TimeSpan.FromMilliseconds(ms)), (line.Program, line.Key, line.At));
    }

    [Theory]
    [InlineData("relay: stage=enroll machine=1")]
    [InlineData("tabula-boot: verified")]
    [InlineData("tabula-boot: verified t=12 url=x")]
    [InlineData("tabula-boot: verified t=-3ms")]
    [InlineData("tabula-Boot: verified t=3ms")]
    [InlineData("tabula-: x t=3ms")]
    [InlineData("TABULA-MARKER ospkg_sha256=00")]
    public void Other_lines_are_not_ours(string text) => Assert.Null(ConsoleLine.TryParse(text));

    [Fact]
    public void Markers_match_whole_words_of_the_detail()
    {
        var marker = ConsoleMarker.Relay("sync", "add revision=3");
        Assert.True(marker.Matches("tabula-relay: sync t=5ms add revision=3 peers=1"));
        Assert.False(marker.Matches("tabula-relay: sync t=5ms add revision=31 peers=1"));
        Assert.False(marker.Matches("tabula-boot: sync t=5ms add revision=3 peers=1"));
        Assert.True(ConsoleMarker.Boot("kexec").Matches("tabula-boot: kexec t=9ms kernel=1B"));
    }

    [Fact]
    public void Any_text_parses_or_gives_null_and_never_throws() =>
        Gen.String.Sample(text =>
        {
            var line = ConsoleLine.TryParse(text);
            if (line is not null)
            {
                _ = line.Field("x");
                Assert.Equal(line, ConsoleLine.TryParse(line.ToString()));
            }
        }, iter: 20_000);
}
