namespace Tabula.Packaging;

/// <summary>
/// An ST trust policy folder (/etc/trust_policy in the stboot initramfs): trust_policy.json,
/// ospkg_signing_root.pem (one or more roots), tls_roots.pem (for network fetch), and the
/// optional Sigsum policy ospkg_trust_policy, and with a <see cref="TrustPolicy.Freshness"/> policy the boot ticket key
/// ticket_root.pem (<see cref="TicketRoot"/>). A folder with only the legacy
/// security_configuration.json is read too, and says so in <see cref="TrustPolicy.IsLegacy"/>.
/// </summary>
public sealed record TrustPolicyFolder(TrustPolicy Policy, IReadOnlyList<Certificate> SigningRoots,
    IReadOnlyList<Certificate>? TlsRoots, SigsumPolicy? Sigsum)
{
    /// <summary>
    /// The fleet controller's boot ticket key (raw 32-byte Ed25519 public key) from ticket_root.pem, an SPKI "PUBLIC KEY"
    /// PEM; separate from the signing and TLS roots. Present exactly when <see cref="TrustPolicy.Freshness"/> is.
    /// </summary>
    public byte[]? TicketRoot { get; init; }

    /// <summary>File names inside the folder.</summary>
    public const string PolicyFile = "trust_policy.json", LegacyPolicyFile = "security_configuration.json",
        SigningRootFile = "ospkg_signing_root.pem", TlsRootsFile = "tls_roots.pem", SigsumPolicyFile = "ospkg_trust_policy",
        TicketRootFile = "ticket_root.pem";

    /// <summary>The verification inputs this folder defines.</summary>
    public VerificationPolicy ToVerificationPolicy() => new(SigningRoots, Policy.SignatureThreshold, Sigsum);

    /// <summary>Loads and validates a folder; missing or bad files throw naming the file.</summary>
    public static TrustPolicyFolder Load(string directory)
    {
        if (!Directory.Exists(directory))
            throw new DirectoryNotFoundException($"trust policy folder {directory} does not exist");
        string policyPath = Path.Combine(directory, PolicyFile);
        if (!File.Exists(policyPath) && File.Exists(Path.Combine(directory, LegacyPolicyFile)))
            policyPath = Path.Combine(directory, LegacyPolicyFile);
        var policy = TrustPolicy.Parse(ReadLimited(policyPath, Limits.MaxConfigJsonBytes), Path.GetFileName(policyPath));
        var roots = Named(SigningRootFile, () => Certificate.ParsePemBundle(ReadLimited(Path.Combine(directory, SigningRootFile), Limits.MaxPemBytes)));
        string tlsPath = Path.Combine(directory, TlsRootsFile);
        var tls = File.Exists(tlsPath) ? Named(TlsRootsFile, () => Certificate.ParsePemBundle(ReadLimited(tlsPath, Limits.MaxPemBytes))) : null;
        string sigsumPath = Path.Combine(directory, SigsumPolicyFile);
        var sigsum = File.Exists(sigsumPath) ? SigsumPolicy.Parse(ReadLimited(sigsumPath, Limits.MaxSigsumPolicyBytes)) : null;
        string ticketPath = Path.Combine(directory, TicketRootFile);
        byte[]? ticketRoot = null;
        if (File.Exists(ticketPath))
        {
            if (policy.Freshness is null)
                PackageFormatException.Throw(FormatError.MissingEntry,
                    $"{TicketRootFile} is present but {PolicyFile} has no {TrustPolicy.FreshnessKey} object (remove the file or add the object)");
            ticketRoot = Named(TicketRootFile, () => Crypto.Ed25519Keys.FromPublicKeyPem(ReadLimited(ticketPath, Limits.MaxPemBytes)));
        }
        else if (policy.Freshness is not null)
            PackageFormatException.Throw(FormatError.MissingEntry,
                $"{PolicyFile} has a {TrustPolicy.FreshnessKey} object but the folder has no {TicketRootFile} (the controller's ticket key)");
        return new TrustPolicyFolder(policy, roots, tls, sigsum) { TicketRoot = ticketRoot };
    }

    /// <summary>
    /// Writes the folder <see cref="Load"/> reads back to the same values: trust_policy.json (<see cref="TrustPolicy.ToJson"/>),
    /// ospkg_signing_root.pem and, when there are TLS roots, tls_roots.pem (PEM, one block per certificate, in order).
    /// Creates <paramref name="directory"/> if needed and refuses one that already holds any file of a trust policy
    /// folder (a stale legacy or Sigsum file would change what the folder means). With a freshness policy it writes
    /// ticket_root.pem (<see cref="TicketRoot"/>, required then, refused otherwise). A Sigsum policy is not written:
    /// its file is the operator's, copy it beside (<see cref="SigsumPolicyFile"/>).
    /// </summary>
    public void Write(string directory)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        if (Sigsum is not null)
            throw new NotSupportedException($"a Sigsum policy is not written; copy its file to {SigsumPolicyFile}");
        if (SigningRoots.Count == 0)
            throw new ArgumentException("a trust policy folder needs at least one signing root");
        if ((Policy.Freshness is null) != (TicketRoot is null))
            throw new ArgumentException($"a ticket root ({TicketRootFile}) goes with a freshness policy, and only with one");
        if (TicketRoot is { Length: not Crypto.Ed25519.PublicKeySize })
            throw new ArgumentException("a ticket root is a 32-byte Ed25519 public key");
        byte[] policy = Policy.ToJson();
        Directory.CreateDirectory(directory);
        foreach (string file in (string[])[PolicyFile, LegacyPolicyFile, SigningRootFile, TlsRootsFile, SigsumPolicyFile, TicketRootFile])
            if (File.Exists(Path.Combine(directory, file)))
                throw new IOException($"{Path.Combine(directory, file)} already exists");
        File.WriteAllText(Path.Combine(directory, SigningRootFile), string.Concat(SigningRoots.Select(r => Pem.EncodeCertificate(r.Der))));
        if (TlsRoots is { Count: > 0 } tls)
            File.WriteAllText(Path.Combine(directory, TlsRootsFile), string.Concat(tls.Select(r => Pem.EncodeCertificate(r.Der))));
        if (TicketRoot is not null)
            File.WriteAllText(Path.Combine(directory, TicketRootFile), Crypto.Ed25519Keys.ToPublicKeyPem(TicketRoot));
        File.WriteAllBytes(Path.Combine(directory, PolicyFile), policy);   // last: a folder without it is plainly incomplete
    }

    /// <summary>Reads a whole file, refusing one larger than <paramref name="limit"/> before reading it.</summary>
    public static byte[] ReadLimited(string path, long limit)
    {
        using var file = File.OpenRead(path);
        PackageFormatException.ThrowIfTooLarge(file.Length, limit, Path.GetFileName(path));
        var bytes = new byte[file.Length];
        file.ReadExactly(bytes);
        return bytes;
    }

    private static T Named<T>(string file, Func<T> parse)
    {
        try { return parse(); }
        catch (PackageFormatException e) { throw new PackageFormatException(e.Error, $"{file}: {e.Message}", e); }
    }
}
