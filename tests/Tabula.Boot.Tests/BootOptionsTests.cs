namespace Tabula.Boot.Tests;

public sealed class BootOptionsTests
{
    [Fact]
    public void Defaults_are_upstreams()
    {
        var options = BootOptions.Parse([]);
        Assert.Equal(8, options.AttemptsPerObject);
        Assert.Equal(TimeSpan.FromSeconds(1), options.AttemptWait);
        Assert.Equal(TimeSpan.FromSeconds(6), options.RetryWait);
    }

    [Fact]
    public void Options_after_the_double_dash_override_timing_only()
    {
        var options = BootOptions.Parse(["--attempts=1", "--retry-wait=2", "--rounds=9", "--attempt-wait=0"]);
        Assert.Equal(new BootOptions { AttemptsPerObject = 1, RetryWait = TimeSpan.FromSeconds(2), MaxRounds = 9, AttemptWait = TimeSpan.Zero }, options);
    }

    [Fact]
    public void Kexec_method_is_auto_unless_load_or_file_is_asked_for()
    {
        Assert.Equal(Kexec.KexecMethod.Auto, BootOptions.Parse([]).KexecMethod);
        Assert.Equal(Kexec.KexecMethod.Auto, BootOptions.Parse(["--kexec=auto"]).KexecMethod);
        Assert.Equal(Kexec.KexecMethod.Load, BootOptions.Parse(["--kexec=load"]).KexecMethod);
        Assert.Equal(Kexec.KexecMethod.File, BootOptions.Parse(["--kexec=file"]).KexecMethod);
    }

    [Theory]
    [InlineData("--kexec=fast")]
    [InlineData("--attempts=0")]
    [InlineData("--rounds=x")]
    [InlineData("--skip-verify")]
    public void Unknown_or_out_of_range_options_are_refused(string argument) =>
        Assert.Throws<FormatException>(() => BootOptions.Parse([argument]));
}
