using System.Text.Json.Serialization;

namespace Tabula.Fleet;

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(RelayPlacement))]
internal sealed partial class StorageJson : JsonSerializerContext;
