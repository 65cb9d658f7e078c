using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace Tabula.Provisioning.Hosting;

/// <summary>
/// The server's configuration: a JSON file (keys as below, case-insensitive) overridden by <c>TABULA_*</c>
/// environment variables (<c>TABULA_LISTEN</c>, <c>TABULA_STOREDIRECTORY</c>, <c>TABULA_TLS__CERTIFICATEPATH</c>,
/// <c>TABULA_LIMITS__MAXARCHIVEBYTES</c>, …). Loopback by default, as matchbox.
/// </summary>
public sealed class ProvisioningOptions
{
    /// <summary>Where to listen: <c>https://IP:PORT</c> (or <c>http://</c> behind a TLS-terminating proxy).
    /// Only IP literals and <c>localhost</c>; port 0 picks a free port.</summary>
    [Required]
    public string Listen { get; set; } = "https://127.0.0.1:8443";

    /// <summary>The store's root directory (content-addressed objects, channels, groups, audit log, tokens).</summary>
    [Required]
    public string StoreDirectory { get; set; } = "";

    /// <summary>An ST trust policy folder (trust_policy.json, ospkg_signing_root.pem, optional
    /// ospkg_trust_policy). Uploads are verified against it; the server refuses to start without it.</summary>
    [Required]
    public string TrustPolicyDirectory { get; set; } = "";

    /// <summary>When set, served descriptors carry an absolute <c>os_pkg_url</c> under this base (needed by stboot
    /// before v0.4); otherwise a root-relative one.</summary>
    public string? PublicBaseUrl { get; set; }

    public TlsOptions Tls { get; set; } = new();

    public ProvisioningLimits Limits { get; set; } = new();
}

/// <summary>PEM files for HTTPS, as written by <c>tabula provisioning tls init</c>.</summary>
public sealed class TlsOptions
{
    public string? CertificatePath { get; set; }
    public string? KeyPath { get; set; }
}

[OptionsValidator]
public sealed partial class ProvisioningOptionsValidator : IValidateOptions<ProvisioningOptions>;

/// <summary>The configuration is unusable; the message names the key.</summary>
public sealed class ProvisioningConfigException(string message, Exception? inner = null) : Exception(message, inner);
