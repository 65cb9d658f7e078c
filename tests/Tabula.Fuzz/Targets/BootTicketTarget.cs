using Tabula.Packaging;

namespace Tabula.Fuzz.Targets;

/// <summary>
/// A boot ticket (freshness design §4). Bad input is a <see cref="BootTicketException"/>, nothing else; an accepted
/// ticket's payload written back and parsed again is the same payload, and its signature check never throws.
/// </summary>
public static class BootTicketTarget
{
    public static bool Fuzz(ReadOnlySpan<byte> input)
    {
        BootTicket ticket;
        try { ticket = BootTicket.Parse(input); }
        catch (BootTicketException) { return false; }

        FuzzFinding.Check(input.Length <= Limits.MaxBootTicketBytes, "boot ticket: over the limit accepted", input);
        FuzzFinding.Check(BootTicketPayload.Parse(ticket.Payload.ToJson()) == ticket.Payload, "boot ticket: payload parse, write, parse changed it", input);
        FuzzFinding.Check(ticket.Bytes.SequenceEqual(input), "boot ticket: bytes are not the input", input);
        FuzzFinding.Check(MachineIdentity.IsMachineId(ticket.Payload.MachineId) && ticket.Payload.Nonce.Length == BootTicketPayload.NonceSize,
            "boot ticket: bad machine id or nonce accepted", input);
        _ = ticket.VerifySignature(new byte[32]);
        return true;
    }
}
