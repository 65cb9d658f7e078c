using System.Text.Json.Serialization;

namespace Tabula.Relay.Fleet;

// The relay's side of /relay/v1 (docs/fleet.md). Declared here rather than shared with Tabula.Fleet so the static
// agent does not pull in ASP.NET; the field names are the wire contract and tests run both against each other.
public sealed record NonceReply(string Nonce);
public sealed record EnrollRequest(string IdentityKey, string WireguardPublicKey, string PackageDigest, string Nonce, string Signature);
public sealed record EnrollReply(string MachineId, string State, string RelayToken);
public sealed record ConfigReply(string MachineId, string State, int ListenPort, string Ipv4Gateway, string Ipv6Gateway);
public sealed record AppliedReport(long Revision);
public sealed record HealthReport(long Peers, long HandshakesLastMinute, long RxBytes, long TxBytes, long AppliedRevision);
public sealed record ErrorReply(string? Error, string? Message);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(NonceReply))]
[JsonSerializable(typeof(EnrollRequest))]
[JsonSerializable(typeof(EnrollReply))]
[JsonSerializable(typeof(ConfigReply))]
[JsonSerializable(typeof(AppliedReport))]
[JsonSerializable(typeof(HealthReport))]
[JsonSerializable(typeof(ErrorReply))]
internal sealed partial class RelayJson : JsonSerializerContext;
