namespace Tabula.Tpm;

public sealed partial class Tpm2
{
    /// <summary>
    /// Sends TPM2_Startup(<paramref name="type"/>). Returns false when the TPM was started already (it answers
    /// TPM_RC_INITIALIZE; firmware normally starts it before Linux runs), true when this call started it.
    /// </summary>
    public bool Startup(TpmStartupType type = TpmStartupType.Clear)
    {
        try
        {
            Execute(TpmCommandCode.Startup, 0, (ref TpmWriter w) => w.WriteUInt16((ushort)type));
            return true;
        }
        catch (TpmErrorException e) when (e.Code.Base == TpmRc.Initialize)
        {
            return false;
        }
    }
}
