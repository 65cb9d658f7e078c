using System.Text.Json;
using System.Text.Json.Serialization;
using Tabula.Provisioning.Core;
using Tabula.Provisioning.Http;

namespace Tabula.Provisioning;

/// <summary>Every type the server reads or writes as JSON, source-generated (AOT- and trim-safe), snake_case.</summary>
[JsonSourceGenerationOptions(JsonSerializerDefaults.Web,
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    UnmappedMemberHandling = JsonUnmappedMemberHandling.Skip,
    RespectNullableAnnotations = true)]
[JsonSerializable(typeof(PackageRecord))]
[JsonSerializable(typeof(PackageRecord[]))]
[JsonSerializable(typeof(IReadOnlyList<PackageRecord>))]
[JsonSerializable(typeof(ChannelRecord))]
[JsonSerializable(typeof(IReadOnlyList<ChannelRecord>))]
[JsonSerializable(typeof(AuditEntry))]
[JsonSerializable(typeof(IReadOnlyList<AuditEntry>))]
[JsonSerializable(typeof(TokenRecord[]))]
[JsonSerializable(typeof(TokenView[]))]
[JsonSerializable(typeof(Dictionary<string, DateTimeOffset>))]
[JsonSerializable(typeof(GroupFile))]
[JsonSerializable(typeof(ErrorBody))]
[JsonSerializable(typeof(PublishResponse))]
[JsonSerializable(typeof(ChannelMoveRequest))]
[JsonSerializable(typeof(HealthResponse))]
[JsonSerializable(typeof(JsonElement))]
public sealed partial class ProvisioningJsonContext : JsonSerializerContext;
