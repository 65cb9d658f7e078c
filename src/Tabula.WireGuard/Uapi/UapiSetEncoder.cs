using System.Net;
using System.Net.Sockets;
using System.Text;
using Tabula.WireGuard.Keys;

namespace Tabula.WireGuard.Uapi;

/// <summary>
/// Writes a UAPI <c>set=1</c> request into a fixed buffer, in the key order <c>wg</c> uses (wireguard-tools
/// <c>ipc-uapi.h</c>): device keys, then per peer <c>public_key</c>, then <c>remove</c> alone or <c>update_only</c>,
/// <c>preshared_key</c>, <c>endpoint</c>, <c>persistent_keepalive_interval</c>, <c>replace_allowed_ips</c>,
/// <c>allowed_ip</c> lines. The caller drains the buffer (<see cref="Pending"/>, <see cref="Clear"/>) whenever a
/// <c>TryWrite</c> says it is full, so the request streams in chunks of at most the buffer size.
/// </summary>
internal sealed class UapiSetEncoder(byte[] buffer, int capacity)
{
    // Upper bounds of what one call writes; checked before writing so a line is never split by a flush.
    const int DeviceMaxBytes = 256;      // private_key (77) + listen_port (18) + fwmark (18) + replace_peers (19) + set=1
    const int PeerHeaderMaxBytes = 512;  // public_key (76) + update_only (17) + preshared_key (79) + endpoint (≤ 80) + keepalive (37) + replace_allowed_ips (25)
    const int AllowedIpMaxBytes = 64;    // "allowed_ip=" + 39-char IPv6 + "/128\n"

    int length;

    public UapiSetEncoder(int capacity) : this(new byte[capacity], capacity) { }

    /// <summary>Bytes written and not yet drained.</summary>
    public ReadOnlyMemory<byte> Pending => buffer.AsMemory(0, length);

    /// <summary>Forgets the pending bytes after the caller sent them.</summary>
    public void Clear() => length = 0;

    /// <summary>Writes <c>set=1</c> and the device keys. Call first, on an empty buffer.</summary>
    public void WriteDevice(DeviceUpdate update)
    {
        if (capacity - length < DeviceMaxBytes)
            throw new InvalidOperationException("the encoder must be empty before the device section");
        Line("set=1"u8);
        if (update.PrivateKey is { } privateKey)
            KeyLine("private_key="u8, privateKey);
        if (update.ListenPort is { } port)
            NumberLine("listen_port="u8, port);
        if (update.FirewallMark is { } mark)
            NumberLine("fwmark="u8, mark);
        if (update.ReplacePeers)
            Line("replace_peers=true"u8);
    }

    /// <summary>
    /// Writes as much of <paramref name="peer"/> as fits. <paramref name="nextAllowedIp"/> starts at -1 (header not
    /// written yet) and tracks progress across calls; returns true when the whole peer is written, false when the
    /// buffer must be drained first.
    /// </summary>
    public bool TryWritePeer(PeerUpdate peer, ref int nextAllowedIp)
    {
        if (nextAllowedIp < 0)
        {
            if (capacity - length < PeerHeaderMaxBytes)
                return false;
            KeyLine("public_key="u8, peer.PublicKey);
            if (peer.Remove)
            {
                Line("remove=true"u8);
                nextAllowedIp = 0;
                return true;
            }
            if (peer.UpdateOnly)
                Line("update_only=true"u8);
            if (peer.PresharedKey is { } psk)
                KeyLine("preshared_key="u8, psk);
            if (peer.Endpoint is { } endpoint)
                EndpointLine(endpoint);
            if (peer.PersistentKeepaliveInterval is { } keepalive)
                NumberLine("persistent_keepalive_interval="u8, keepalive);
            if (peer.ReplaceAllowedIps)
                Line("replace_allowed_ips=true"u8);
            nextAllowedIp = 0;
        }
        var ips = peer.AllowedIps;
        for (; nextAllowedIp < ips.Count; nextAllowedIp++)
        {
            if (capacity - length < AllowedIpMaxBytes)
                return false;
            AllowedIpLine(ips[nextAllowedIp]);
        }
        return true;
    }

    /// <summary>Writes the empty line that ends the request. Needs one free byte; returns false when full.</summary>
    public bool TryWriteEnd()
    {
        if (capacity - length < 1)
            return false;
        buffer[length++] = (byte)'\n';
        return true;
    }

    Span<byte> Free => buffer.AsSpan(length, capacity - length);

    void Line(ReadOnlySpan<byte> text)
    {
        text.CopyTo(Free);
        length += text.Length;
        buffer[length++] = (byte)'\n';
    }

    void KeyLine(ReadOnlySpan<byte> prefix, WireGuardKey key)
    {
        prefix.CopyTo(Free);
        length += prefix.Length;
        key.FormatHex(Free);
        length += WireGuardKey.HexLength;
        buffer[length++] = (byte)'\n';
    }

    void NumberLine(ReadOnlySpan<byte> prefix, ulong value)
    {
        prefix.CopyTo(Free);
        length += prefix.Length;
        value.TryFormat(Free, out int written, default, System.Globalization.CultureInfo.InvariantCulture);
        length += written;
        buffer[length++] = (byte)'\n';
    }

    void EndpointLine(IPEndPoint endpoint)
    {
        "endpoint="u8.CopyTo(Free);
        length += "endpoint="u8.Length;
        bool v6 = endpoint.AddressFamily == AddressFamily.InterNetworkV6;
        if (v6)
            buffer[length++] = (byte)'[';
        if (!endpoint.Address.TryFormat(Free, out int written))
            throw new InvalidOperationException("endpoint address does not fit");
        length += written;
        if (v6)
            buffer[length++] = (byte)']';
        buffer[length++] = (byte)':';
        ((ushort)endpoint.Port).TryFormat(Free, out written, default, System.Globalization.CultureInfo.InvariantCulture);
        length += written;
        buffer[length++] = (byte)'\n';
    }

    void AllowedIpLine(AllowedIp ip)
    {
        "allowed_ip="u8.CopyTo(Free);
        length += "allowed_ip="u8.Length;
        ip.Address.TryFormat(Free, out int written);
        length += written;
        buffer[length++] = (byte)'/';
        ip.Cidr.TryFormat(Free, out written, default, System.Globalization.CultureInfo.InvariantCulture);
        length += written;
        buffer[length++] = (byte)'\n';
    }

    /// <summary>The pending text (tests).</summary>
    public override string ToString() => Encoding.ASCII.GetString(buffer, 0, length);
}
