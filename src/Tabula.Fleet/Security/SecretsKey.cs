using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace Tabula.Fleet.Security;

/// <summary>
/// The controller's at-rest key (issue 17, "At rest"): 32 random bytes in a file outside the database, mode 0600, made at
/// first start. Nothing derived from it is stored except a check value, so a copy of the database alone yields neither
/// account numbers nor TOTP secrets. Two keys are derived with HKDF-SHA256, each under its own label:
/// <list type="bullet">
/// <item>the account-number key: accounts are stored and looked up by HMAC-SHA256(key, number) (<see cref="AccountNumberHmac"/>);</item>
/// <item>the TOTP key: staff TOTP secrets are sealed with AES-256-GCM, a random 96-bit nonce per write, and the staff id and
/// column as associated data, so a sealed secret copied to another row does not open (<see cref="SealTotp"/>).</item>
/// </list>
/// The server key itself is zeroed once the keys are derived; the derived keys on <see cref="Dispose"/>. Losing the file
/// loses every account (numbers cannot be recovered from their HMACs) and every TOTP enrollment: back it up apart from
/// the database (docs/fleet.md "At rest").
/// </summary>
public sealed class SecretsKey : IDisposable
{
    /// <summary>The server key's length in bytes.</summary>
    public const int KeyBytes = 32;

    /// <summary>The file's largest accepted size (64 hex digits and a newline; arbitrary limit).</summary>
    public const int MaxFileBytes = 256;

    /// <summary>First byte of a sealed TOTP secret: the format (version 1: nonce ‖ ciphertext ‖ tag).</summary>
    private const byte SealVersion = 1;
    private const int NonceBytes = 12, TagBytes = 16;

    // HKDF "info" labels: one per use, so no derived key can stand in for another.
    private static readonly byte[] AccountLabel = "tabula fleet v1 account-number hmac-sha256"u8.ToArray();
    private static readonly byte[] TotpLabel = "tabula fleet v1 totp aes-256-gcm"u8.ToArray();
    private static readonly byte[] CheckLabel = "tabula fleet v1 secrets-key check"u8.ToArray();

    private readonly byte[] accountKey;
    private readonly byte[] totpKey;
    private volatile bool disposed;

    private SecretsKey(ReadOnlySpan<byte> serverKey, string path)
    {
        accountKey = new byte[32];
        totpKey = new byte[32];
        Span<byte> check = stackalloc byte[16];
        HKDF.DeriveKey(HashAlgorithmName.SHA256, serverKey, accountKey, salt: [], info: AccountLabel);
        HKDF.DeriveKey(HashAlgorithmName.SHA256, serverKey, totpKey, salt: [], info: TotpLabel);
        HKDF.DeriveKey(HashAlgorithmName.SHA256, serverKey, check, salt: [], info: CheckLabel);
        Check = Convert.ToHexStringLower(check);
        Path = path;
    }

    /// <summary>Where the key is stored.</summary>
    public string Path { get; }

    /// <summary>
    /// A value derived from the key under its own label, which the database keeps (fleet_settings "secrets_key_check"), so
    /// an instance started with another key refuses to start instead of knowing no account. It reveals nothing of the keys.
    /// </summary>
    public string Check { get; }

    /// <summary>Lowercase hex HMAC-SHA256 of an account number under the account-number key: what the database stores.</summary>
    public string AccountNumberHmac(string number)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        if (number.Length > 16) throw new ArgumentException("account numbers are at most 16 digits", nameof(number));
        Span<byte> text = stackalloc byte[64];
        Span<byte> mac = stackalloc byte[32];
        int length = Encoding.UTF8.GetBytes(number, text);
        HMACSHA256.HashData(accountKey, text[..length], mac);
        string hex = Convert.ToHexStringLower(mac);
        CryptographicOperations.ZeroMemory(text);
        return hex;
    }

    /// <summary>The account id staff and customers see instead of the number: the HMAC's first 16 hex digits.</summary>
    public static string AccountId(string numberHmac) => numberHmac[..AccountIdLength];

    /// <summary>Hex digits of an account id.</summary>
    public const int AccountIdLength = 16;

    /// <summary>Seals a TOTP secret of staff member <paramref name="staffId"/> for column <paramref name="column"/>.</summary>
    public byte[] SealTotp(long staffId, string column, ReadOnlySpan<byte> secret)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        byte[] sealedBytes = new byte[1 + NonceBytes + secret.Length + TagBytes];
        sealedBytes[0] = SealVersion;
        var nonce = sealedBytes.AsSpan(1, NonceBytes);
        RandomNumberGenerator.Fill(nonce);
        using var aes = new AesGcm(totpKey, TagBytes);
        aes.Encrypt(nonce, secret, sealedBytes.AsSpan(1 + NonceBytes, secret.Length), sealedBytes.AsSpan(1 + NonceBytes + secret.Length),
            AssociatedData(staffId, column));
        return sealedBytes;
    }

    /// <summary>
    /// Opens what <see cref="SealTotp"/> sealed for the same staff member and column, or null when it does not open (another
    /// key, another row, tampered bytes): a TOTP check against null fails, so such a login is refused.
    /// </summary>
    public byte[]? OpenTotp(long staffId, string column, ReadOnlySpan<byte> sealedBytes)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        if (sealedBytes.Length < 1 + NonceBytes + TagBytes || sealedBytes[0] != SealVersion) return null;
        int length = sealedBytes.Length - 1 - NonceBytes - TagBytes;
        byte[] secret = new byte[length];
        try
        {
            using var aes = new AesGcm(totpKey, TagBytes);
            aes.Decrypt(sealedBytes.Slice(1, NonceBytes), sealedBytes.Slice(1 + NonceBytes, length), sealedBytes[^TagBytes..], secret,
                AssociatedData(staffId, column));
            return secret;
        }
        catch (AuthenticationTagMismatchException)
        {
            CryptographicOperations.ZeroMemory(secret);
            return null;
        }
    }

    private static byte[] AssociatedData(long staffId, string column)
    {
        // "staff" ‖ id (8 bytes, big-endian) ‖ column name: binds the ciphertext to its row and column.
        byte[] data = new byte[5 + 8 + Encoding.ASCII.GetByteCount(column)];
        "staff"u8.CopyTo(data);
        BinaryPrimitives.WriteInt64BigEndian(data.AsSpan(5), staffId);
        Encoding.ASCII.GetBytes(column, data.AsSpan(13));
        return data;
    }

    /// <summary>
    /// Reads the key at <paramref name="path"/>, or makes one there (created exclusively with mode 0600, so instances starting at
    /// once on a shared directory end up with the same key). Refuses a file group or others may read or write.
    /// Throws <see cref="ArgumentException"/> with the reason (the CLI's exit 2).
    /// </summary>
    public static SecretsKey LoadOrCreate(string path)
    {
        string full = System.IO.Path.GetFullPath(path);
        if (!File.Exists(full))
        {
            if (System.IO.Path.GetDirectoryName(full) is { } directory)
                Directory.CreateDirectory(directory);
            byte[] key = RandomNumberGenerator.GetBytes(KeyBytes);
            char[] hex = new char[2 * KeyBytes];
            byte[] text = new byte[2 * KeyBytes + 1];
            try
            {
                // Through spans, never a string: strings cannot be zeroed.
                Convert.TryToHexStringLower(key, hex, out _);
                Encoding.ASCII.GetBytes(hex, text);
                text[^1] = (byte)'\n';
                var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None };
                if (!OperatingSystem.IsWindows()) options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
                using var file = new FileStream(full, options);
                file.Write(text);
                file.Flush(flushToDisk: true);
            }
            catch (IOException) when (File.Exists(full)) { /* another instance made it first: read theirs */ }
            finally
            {
                CryptographicOperations.ZeroMemory(key);
                CryptographicOperations.ZeroMemory(text);
                Array.Clear(hex);
            }
        }
        return Load(full);
    }

    /// <summary>Reads an existing key file; see <see cref="LoadOrCreate"/>.</summary>
    public static SecretsKey Load(string path)
    {
        string full = System.IO.Path.GetFullPath(path);
        if (!File.Exists(full)) throw new ArgumentException($"the secrets key {full} does not exist");
        if (!OperatingSystem.IsWindows() && (File.GetUnixFileMode(full) & (UnixFileMode.GroupRead | UnixFileMode.GroupWrite
                | UnixFileMode.OtherRead | UnixFileMode.OtherWrite)) != 0)
            throw new ArgumentException($"the secrets key {full} is readable or writable by group or others; chmod 600 it (and ask who may have read it)");
        byte[] bytes;
        try
        {
            using var file = new FileStream(full, FileMode.Open, FileAccess.Read, FileShare.Read);
            if (file.Length > MaxFileBytes) throw new ArgumentException($"the secrets key {full} is larger than {MaxFileBytes} bytes");
            bytes = new byte[file.Length];
            file.ReadExactly(bytes);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ArgumentException($"cannot read the secrets key {full}: {e.Message}", e);
        }
        Span<byte> key = stackalloc byte[KeyBytes];
        Span<char> hex = stackalloc char[2 * KeyBytes];
        try
        {
            var digits = bytes.AsSpan().TrimEnd("\r\n"u8);
            if (digits.Length != 2 * KeyBytes || Encoding.ASCII.GetChars(digits, hex) != hex.Length
                || Convert.FromHexString(hex, key, out _, out int written) != System.Buffers.OperationStatus.Done || written != KeyBytes)
                throw new ArgumentException($"the secrets key {full} is not {2 * KeyBytes} hex digits (and a newline)");
            return new SecretsKey(key, full);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(key);
            hex.Clear();
            CryptographicOperations.ZeroMemory(bytes);
        }
    }

    /// <summary>
    /// Where the key lives when <see cref="FleetOptions.SecretsKeyPath"/> is not set: next to a SQLite database
    /// (<c>fleet-secrets.key</c> in its folder, not inside the database). A PostgreSQL fleet has no data folder: it must say.
    /// </summary>
    public static string DefaultPath(string database)
    {
        if (database.StartsWith("postgres:", StringComparison.Ordinal))
            throw new ArgumentException("with a PostgreSQL database, pass --secrets-key PATH (the same key file on every instance)");
        string file = database.StartsWith("sqlite:", StringComparison.Ordinal) ? database["sqlite:".Length..] : database;
        string directory = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(file)) ?? ".";
        return System.IO.Path.Combine(directory, "fleet-secrets.key");
    }

    /// <summary>Zeroes the derived keys; every use after this throws <see cref="ObjectDisposedException"/> (never a zero key).</summary>
    public void Dispose()
    {
        disposed = true;
        CryptographicOperations.ZeroMemory(accountKey);
        CryptographicOperations.ZeroMemory(totpKey);
    }
}
