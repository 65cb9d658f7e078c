using CsCheck;
using Tabula.Linux.Netlink;
using Tabula.Linux.Netlink.Route;

namespace Tabula.Linux.Tests;

/// <summary>
/// The fuzz-style check for every netlink parser: arbitrary bytes, and mutations of a valid reply, give either a
/// parsed value or a <see cref="KernelDataException"/>, never another exception or an out-of-range read.
/// </summary>
public sealed class NetlinkPropertyTests
{
    const long Iterations = 20_000;

    static byte[] ValidLinkDatagram()
    {
        var builder = new NetlinkMessageBuilder(16, NetlinkMessageFlags.Multi);
        Span<byte> info = builder.AppendFamilyHeader(16);
        info[4] = 2;
        builder.AddString(3, "eth0");
        builder.AddAttribute(1, [0x52, 0x54, 0, 1, 2, 3]);
        builder.AddAttribute(16, [6]);
        builder.AddUInt32(4, 1500);
        int nest = builder.BeginNested(18);
        builder.AddString(1, "veth");
        builder.EndNested(nest);
        return builder.Finish(7).ToArray();
    }

    static void ParseEverything(byte[] datagram)
    {
        try
        {
            var reader = new NetlinkMessageReader(datagram);
            while (reader.TryRead(out NetlinkMessage message))
            {
                if (message.Type == 16)
                    RouteSocket.ParseLink(message.Payload);
                else
                    RouteSocket.ParseAddress(message.Payload);
                var attributes = new AttributeReader(message.Payload);
                while (attributes.TryRead(out _, out ReadOnlySpan<byte> payload))
                {
                    var nested = new AttributeReader(payload);
                    while (nested.TryRead(out _, out _)) { }
                }
            }
        }
        catch (KernelDataException) { }
    }

    [Fact]
    public void Random_datagrams_give_only_typed_errors() =>
        Gen.Byte.Array[0, 300].Sample(ParseEverything, iter: Iterations);

    [Fact]
    public void Mutated_link_replies_give_only_typed_errors()
    {
        byte[] seed = ValidLinkDatagram();
        ParseEverything(seed);
        Gen.Select(Gen.Int[0, seed.Length - 1].Array[1, 6], Gen.Byte.Array[6], Gen.Int[0, seed.Length])
            .Sample((positions, values, cut) =>
            {
                byte[] mutated = (byte[])seed.Clone();
                for (int i = 0; i < positions.Length; i++)
                    mutated[positions[i]] = values[i];
                ParseEverything(mutated[..cut]);
            }, iter: Iterations);
    }
}
