using System.Text.Json.Nodes;

namespace Tabula.Cli.Tests;

/// <summary>
/// Keys made once per test class by the real CLI: a root with three signers under it, and a
/// stranger root with a signer of its own. Tests build and sign packages in their own folders.
/// </summary>
public sealed class SignerKeys : IDisposable
{
    private readonly Scratch keys = new();

    public SignerKeys()
    {
        Tabula.Ok("keygen", "root", "--out", keys["root"]);
        Tabula.Ok("keygen", "root", "--out", keys["stranger-root"]);
        for (int i = 1; i <= 3; i++)
            Tabula.Ok("keygen", "leaf", "--root-key", keys["root.key"], "--root-cert", keys["root.pem"], "--out", keys[$"signer{i}"]);
        Tabula.Ok("keygen", "leaf", "--root-key", keys["stranger-root.key"], "--root-cert", keys["stranger-root.pem"], "--out", keys["stranger"]);
    }

    public string RootCert => keys["root.pem"];
    public string StrangerRootCert => keys["stranger-root.pem"];

    /// <summary>Private key of a signer ("signer1"…"signer3", "stranger").</summary>
    public string Key(string signer) => keys[$"{signer}.key"];

    /// <summary>Certificate of a signer.</summary>
    public string Cert(string signer) => keys[$"{signer}.pem"];

    /// <summary>Creates os.zip + os.json in <paramref name="scratch"/> and signs it with each named signer in order.</summary>
    public Package CreateSigned(Scratch scratch, params string[] signers)
    {
        string kernel = scratch.RandomFile("vmlinuz", 48 << 10), initramfs = scratch.RandomFile("initramfs.cpio", 96 << 10);
        Tabula.Ok("ospkg", "create", "--kernel", kernel, "--initramfs", initramfs, "--out", scratch["os"]);
        foreach (var signer in signers)
            Tabula.Ok("ospkg", "sign", "--key", Key(signer), "--cert", Cert(signer), scratch["os.json"]);
        return new Package(scratch["os.zip"], scratch["os.json"]);
    }

    public void Dispose() => keys.Dispose();
}

/// <summary>An OS package on disk: NAME.zip and NAME.json.</summary>
public sealed record Package(string Archive, string Descriptor)
{
    public JsonObject ReadDescriptor() => JsonNode.Parse(File.ReadAllText(Descriptor))!.AsObject();

    public void WriteDescriptor(JsonNode json) => File.WriteAllText(Descriptor, json.ToJsonString());

    /// <summary>`tabula ospkg verify` of this package with extra arguments.</summary>
    public ProcessOutput Verify(params string[] args) =>
        Tabula.Run(["ospkg", "verify", "--descriptor", Descriptor, "--archive", Archive, .. args]);

    /// <summary>`tabula ospkg verify --json`, parsed; fails unless stdout is exactly one JSON object.</summary>
    public (ProcessOutput Output, JsonObject Json) VerifyJson(params string[] args)
    {
        var output = Verify([.. args, "--json"]);
        JsonNode? node;
        try { node = JsonNode.Parse(output.Stdout); }
        catch (System.Text.Json.JsonException e) { throw new Xunit.Sdk.XunitException($"stdout is not one JSON value: {e.Message}\n{output}"); }
        return (output, Assert.IsType<JsonObject>(node));
    }
}
