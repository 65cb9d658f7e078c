using Tabula.Packaging;

namespace Tabula.Fuzz.Targets;

/// <summary>
/// stboot's ticket request (freshness design §3), as the controller reads it. Bad input is a
/// <see cref="BootTicketException"/>; an accepted request written back and parsed again is the same request, and
/// <see cref="TicketRequest.Verify"/> answers without throwing.
/// </summary>
public static class TicketRequestTarget
{
    public static bool Fuzz(ReadOnlySpan<byte> input)
    {
        TicketRequest request;
        try { request = TicketRequest.Parse(input); }
        catch (BootTicketException) { return false; }

        FuzzFinding.Check(TicketRequest.Parse(request.ToJson()) == request, "ticket request: parse, write, parse changed it", input);
        FuzzFinding.Check(MachineIdentity.IsMachineId(request.MachineId), "ticket request: machine id", input);
        _ = request.Verify();
        return true;
    }
}
