using System.Buffers;
using System.Text.Json;

namespace Tabula.Packaging;

/// <summary>
/// The host configuration as stboot measures it into PCR 14 (issue 19): public in the event log, which goes to the
/// fleet controller and to any customer who asks the relay for its attestation, so without the secrets. From the
/// configuration's JSON (stmgr's description-and-"---" form too), the top-level members in their order, compact, except:
/// <list type="bullet">
/// <item><c>tabula_relay</c> (the identity key and the enrollment token) is left out: the identity is measured as its
/// machine id (a hash of the public half) in the UxIdentity event;</item>
/// <item><c>authentication</c> (legacy $AUTH, a Basic-auth password) is left out;</item>
/// <item>URLs in <c>ospkg_pointer</c> and <c>provisioning_urls</c> (a string or an array of strings) lose their userinfo
/// (Basic-auth credentials), as on the console.</item>
/// </list>
/// Everything else is measured as it is (addresses, gateway, DNS, interfaces, bonding, description, legacy identity):
/// it says which machine this is and how it reaches the network, which a verifier may hold it to.
/// </summary>
public static class HostConfigMeasured
{
    /// <summary>Top-level members never measured.</summary>
    public static readonly IReadOnlyList<string> SecretMembers = ["tabula_relay", "authentication"];

    /// <summary>Members whose URLs lose their userinfo.</summary>
    public static readonly IReadOnlyList<string> UrlMembers = ["ospkg_pointer", "provisioning_urls"];

    /// <summary>The measured bytes; throws <see cref="PackageFormatException"/> for JSON that is not an object.</summary>
    public static byte[] Of(ReadOnlySpan<byte> hostConfigJson)
    {
        using var document = JsonFields.ParseObject(HostConfig.JsonPart(hostConfigJson), Limits.MaxConfigJsonBytes, "host configuration");
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            foreach (var member in document.RootElement.EnumerateObject())
            {
                if (SecretMembers.Contains(member.Name))
                    continue;
                if (UrlMembers.Contains(member.Name))
                {
                    writer.WritePropertyName(member.Name);
                    WriteRedacted(writer, member.Value);
                    continue;
                }
                member.WriteTo(writer);
            }
            writer.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }

    static void WriteRedacted(Utf8JsonWriter writer, JsonElement value)
    {
        switch (value.ValueKind)
        {
            case JsonValueKind.String:
                writer.WriteStringValue(RedactUrl(value.GetString()!));
                break;
            case JsonValueKind.Array:
                writer.WriteStartArray();
                foreach (var item in value.EnumerateArray())
                    WriteRedacted(writer, item);
                writer.WriteEndArray();
                break;
            default:
                value.WriteTo(writer);
                break;
        }
    }

    /// <summary>A URL without its userinfo; text that is no absolute URL but has an '@' keeps only what follows it.</summary>
    public static string RedactUrl(string text)
    {
        if (Uri.TryCreate(text, UriKind.Absolute, out var uri))
            return uri.UserInfo.Length == 0 ? text : new UriBuilder(uri) { UserName = "", Password = "" }.Uri.ToString();
        int at = text.LastIndexOf('@');
        return at < 0 ? text : text[(at + 1)..];
    }
}
