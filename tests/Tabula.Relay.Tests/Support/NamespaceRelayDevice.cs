using Tabula.Relay.Serving;
using Tabula.Testing;

namespace Tabula.Relay.Tests.Support;

public static class NamespaceRelayDevice
{
    /// <summary>
    /// The agent's device over wireguard-go's interface <paramref name="name"/> in <paramref name="ns"/>: when the agent
    /// configures it, the relay's gateway addresses go on the interface (IPv6 without DAD) and it comes up, as the relay OS does.
    /// </summary>
    public static UapiRelayDevice Create(NetworkNamespace ns, string name) => new(name, config =>
    {
        ns.Ip("addr", "add", config.Ipv4Gateway, "dev", name);
        ns.Ip("-6", "addr", "add", config.Ipv6Gateway, "dev", name, "nodad");
        ns.Ip("link", "set", name, "up");
    });
}
