using Tabula.Tpm;

namespace Tabula.Tpm.Tests;

public sealed class ResponseCodeTests
{
    [Theory]
    [InlineData(0x100u, TpmRc.Initialize, false, null, null, null, "TPM_RC_INITIALIZE (0x100)")]
    [InlineData(0x9A2u, TpmRc.BadAuth, true, null, 1, null, "TPM_RC_BAD_AUTH (0x9a2, session 1)")]
    [InlineData(0x1C4u, TpmRc.Value, true, 1, null, null, "TPM_RC_VALUE (0x1c4, parameter 1)")]
    [InlineData(0x18Bu, TpmRc.Handle, true, null, null, 1, "TPM_RC_HANDLE (0x18b, handle 1)")]
    [InlineData(0x2D5u, TpmRc.Size, true, 2, null, null, "TPM_RC_SIZE (0x2d5, parameter 2)")]
    [InlineData(0x98Eu, TpmRc.AuthFail, true, null, 1, null, "TPM_RC_AUTH_FAIL (0x98e, session 1)")]
    [InlineData(0x922u, TpmRc.Retry, false, null, null, null, "TPM_RC_RETRY (0x922)")]
    [InlineData(0x910u, TpmRc.ReferenceH0, false, null, null, null, "TPM_RC_REFERENCE_H0 (0x910)")]
    [InlineData(0x14Au, TpmRc.NvUninitialized, false, null, null, null, "TPM_RC_NV_UNINITIALIZED (0x14a)")]
    public void Decodes_format_and_numbers(uint value, TpmRc expected, bool format1, int? parameter, int? session, int? handle, string text)
    {
        var code = new TpmResponseCode(value);
        Assert.Equal(expected, code.Base);
        Assert.Equal(format1, code.IsFormat1);
        Assert.Equal(parameter, code.Parameter);
        Assert.Equal(session, code.Session);
        Assert.Equal(handle, code.Handle);
        Assert.Equal(text, code.ToString());
    }

    [Fact]
    public void Warnings_are_retryable_and_errors_are_not()
    {
        Assert.True(new TpmResponseCode(0x922).IsWarning);
        Assert.True(new TpmResponseCode(0x922).IsRetryable);
        Assert.True(new TpmResponseCode(0x90A).IsRetryable);
        Assert.False(new TpmResponseCode(0x9A2).IsRetryable);
        Assert.False(new TpmResponseCode(0x101).IsRetryable);
    }

    [Fact]
    public void A_tpm12_code_and_a_layered_code_say_so()
    {
        Assert.True(new TpmResponseCode(0x1E).IsTpm12);
        Assert.Equal("TPM 1.2 code 0x1e", new TpmResponseCode(0x1E).Name);
        var rm = new TpmResponseCode(0x000B0922);
        Assert.Equal(11, rm.Layer);
        Assert.False(rm.IsRetryable);
        Assert.Contains("layer 11", rm.ToString());
    }
}
