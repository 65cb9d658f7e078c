using System.Security.Cryptography;
using Tabula.Packaging;
using Tabula.Packaging.Crypto;

namespace Tabula.Fleet.Security;

/// <summary>
/// The controller's online boot-ticket key (freshness, issue 16): an Ed25519 key whose public half stboot pins as
/// <c>ticket_root.pem</c> in its trust policy. It is neither a package signing root nor a TLS key: it can only choose among
/// packages the offline signers signed. The private key lives in one PKCS#8 PEM file, mode 0600, outside the database (a
/// stolen database backup does not let anyone issue tickets); it is made at first start. Instances sharing a PostgreSQL
/// database must share the file: <see cref="FleetServer"/> records the public key in the database and refuses to start
/// with another one.
/// </summary>
public sealed class TicketKey : IDisposable
{
    /// <summary>The key file's largest accepted size (a PKCS#8 Ed25519 PEM is ~120 bytes; arbitrary limit).</summary>
    public const int MaxFileBytes = 4096;

    private readonly byte[] privateKey;

    private TicketKey(byte[] privateKey, string path)
    {
        this.privateKey = privateKey;
        PublicKey = Ed25519.PublicKeyOf(privateKey);
        Path = path;
    }

    /// <summary>The raw 32-byte Ed25519 public key.</summary>
    public byte[] PublicKey { get; }

    /// <summary>Where the private key is stored.</summary>
    public string Path { get; }

    /// <summary>The public key as SPKI PEM ("PUBLIC KEY"): the trust policy's <c>ticket_root.pem</c>.</summary>
    public string PublicKeyPem => Ed25519Keys.ToPublicKeyPem(PublicKey);

    /// <summary>Lowercase hex SHA-256 of the raw public key (what logs and the database may show).</summary>
    public string Fingerprint => Convert.ToHexStringLower(SHA256.HashData(PublicKey));

    /// <summary>A boot ticket's bytes: <paramref name="payload"/> signed with the ticket key (<see cref="BootTicket.Sign"/>).</summary>
    public byte[] SignTicket(BootTicketPayload payload) => BootTicket.Sign(payload, privateKey);

    /// <summary>
    /// A reboot command's bytes (issue 18): <paramref name="payload"/> signed with the same key under its own prefix
    /// ("tabula-reboot-command-v1\n", <see cref="Tabula.Fleet.Protocol.RebootCommand"/>), so neither can pass for the other.
    /// </summary>
    public byte[] SignRebootCommand(Tabula.Fleet.Protocol.RebootCommandPayload payload) => Tabula.Fleet.Protocol.RebootCommand.Sign(payload, privateKey);

    /// <summary>
    /// Reads the key at <paramref name="path"/>, or makes one there (created exclusively with mode 0600, so two instances
    /// starting at once on a shared directory end up with the same key). Refuses a file that others may read.
    /// Throws <see cref="ArgumentException"/> with the reason (the CLI's exit 2).
    /// </summary>
    public static TicketKey LoadOrCreate(string path)
    {
        string full = System.IO.Path.GetFullPath(path);
        if (!File.Exists(full))
        {
            if (System.IO.Path.GetDirectoryName(full) is { } directory)
                Directory.CreateDirectory(directory);
            byte[] seed = Ed25519.NewPrivateKey();
            try
            {
                string pem = Ed25519Keys.ToPkcs8Pem(seed);
                var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None };
                if (!OperatingSystem.IsWindows()) options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
                using var file = new FileStream(full, options);
                file.Write(System.Text.Encoding.ASCII.GetBytes(pem));
                file.Flush(flushToDisk: true);
            }
            catch (IOException) when (File.Exists(full)) { /* another instance made it first: read theirs */ }
            finally { CryptographicOperations.ZeroMemory(seed); }
        }
        return Load(full);
    }

    /// <summary>Reads an existing key file; see <see cref="LoadOrCreate"/>.</summary>
    public static TicketKey Load(string path)
    {
        string full = System.IO.Path.GetFullPath(path);
        if (!File.Exists(full)) throw new ArgumentException($"the ticket key {full} does not exist");
        if (!OperatingSystem.IsWindows() && (File.GetUnixFileMode(full) & (UnixFileMode.GroupRead | UnixFileMode.GroupWrite
                | UnixFileMode.OtherRead | UnixFileMode.OtherWrite)) != 0)
            throw new ArgumentException($"the ticket key {full} is readable or writable by group or others; chmod 600 it");
        byte[] bytes;
        try { bytes = TrustPolicyFolder.ReadLimited(full, MaxFileBytes); }
        catch (Exception e) when (e is PackageFormatException or IOException or UnauthorizedAccessException)
        {
            throw new ArgumentException($"cannot read the ticket key {full}: {e.Message}", e);
        }
        try { return new TicketKey(Ed25519Keys.FromPkcs8Pem(bytes), full); }
        catch (PackageFormatException e) { throw new ArgumentException($"the ticket key {full} is not an Ed25519 PKCS#8 PEM key: {e.Message}", e); }
        finally { CryptographicOperations.ZeroMemory(bytes); }
    }

    /// <summary>
    /// Where the ticket key lives when <see cref="FleetOptions.TicketKeyPath"/> is not set: next to a SQLite database
    /// (<c>ticket-key.pem</c> in its folder). A PostgreSQL fleet has no data folder, so it must say.
    /// </summary>
    public static string DefaultPath(string database)
    {
        if (database.StartsWith("postgres:", StringComparison.Ordinal))
            throw new ArgumentException("with a PostgreSQL database, pass --ticket-key PATH (the same key file on every instance)");
        string file = database.StartsWith("sqlite:", StringComparison.Ordinal) ? database["sqlite:".Length..] : database;
        string directory = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(file)) ?? ".";
        return System.IO.Path.Combine(directory, "ticket-key.pem");
    }

    public void Dispose() => CryptographicOperations.ZeroMemory(privateKey);
}
