using System.Net;
using Tabula.WireGuard.Keys;

namespace Tabula.WireGuard;

/// <summary>
/// A change to one peer, as both the UAPI <c>set=1</c> peer section and the kernel's WGDEVICE_A_PEERS entry express
/// it. Unset (null/false) members leave the peer's current value alone. The keys are borrowed, not owned: the
/// update does not dispose them.
/// </summary>
public sealed record PeerUpdate
{
    /// <summary>Selects the peer; creates it unless <see cref="UpdateOnly"/> or <see cref="Remove"/>.</summary>
    public required WireGuardKey PublicKey { get; init; }

    /// <summary>Delete the peer. Nothing else may be set with it.</summary>
    public bool Remove { get; init; }

    /// <summary>Change the peer only if it exists; never create it.</summary>
    public bool UpdateOnly { get; init; }

    /// <summary>New preshared key; <see cref="WireGuardKey.Zero"/> removes it.</summary>
    public WireGuardKey? PresharedKey { get; init; }

    /// <summary>Initial endpoint (the peer roams from there).</summary>
    public IPEndPoint? Endpoint { get; init; }

    /// <summary>Persistent keepalive in seconds; 0 turns it off.</summary>
    public ushort? PersistentKeepaliveInterval { get; init; }

    /// <summary>Clear the peer's allowed IPs before adding <see cref="AllowedIps"/>.</summary>
    public bool ReplaceAllowedIps { get; init; }

    /// <summary>Allowed IPs to add (after clearing, with <see cref="ReplaceAllowedIps"/>). An IP owned by another peer moves here.</summary>
    public IReadOnlyList<AllowedIp> AllowedIps { get; init; } = [];

    internal void Validate()
    {
        ArgumentNullException.ThrowIfNull(PublicKey);
        ArgumentNullException.ThrowIfNull(AllowedIps);
        if (Remove && (UpdateOnly || PresharedKey is not null || Endpoint is not null ||
                       PersistentKeepaliveInterval is not null || ReplaceAllowedIps || AllowedIps.Count != 0))
            throw new ArgumentException("a peer update that removes the peer sets nothing else");
        if (Endpoint is { Port: 0 })
            throw new ArgumentException("an endpoint needs a port");
    }

    /// <summary>An update that deletes the peer with <paramref name="publicKey"/>.</summary>
    public static PeerUpdate RemovePeer(WireGuardKey publicKey) => new() { PublicKey = publicKey, Remove = true };
}
