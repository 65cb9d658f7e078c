namespace Tabula.Provisioning.Core;

/// <summary>Why a provisioning operation failed. The HTTP edge maps each code to one status (Http/Errors.cs).</summary>
public enum ProvisioningError
{
    /// <summary>The request is not shaped as the API requires (missing part, wrong content type, bad JSON).</summary>
    MalformedRequest,
    /// <summary>A channel, group or label name breaks <see cref="Names.Rule"/> or a digest is not 64 hex digits.</summary>
    InvalidName,
    /// <summary>The descriptor is not a System Transparency descriptor (version, types, array lengths).</summary>
    MalformedDescriptor,
    /// <summary>The package's signatures do not meet the trust policy; nothing was stored.</summary>
    PackageRefused,
    /// <summary>A body exceeded its limit in <see cref="ProvisioningLimits"/>.</summary>
    TooLarge,
    /// <summary>No bearer token, or one that matches no stored token hash.</summary>
    Unauthenticated,
    /// <summary>No such object, package, channel or group.</summary>
    NotFound,
    /// <summary>No group matches the machine's labels and no default group exists.</summary>
    NoMatchingGroup,
    /// <summary>The store could not read or write (disk full, permissions). Never reported as "not found".</summary>
    StoreFailed,
    /// <summary>The token is valid but lacks the role the action needs (publish or channels).</summary>
    Forbidden,
    /// <summary>A channel move to a package with a lower release than the channel's current one, without force.</summary>
    ChannelDowngrade,
}

/// <summary>A provisioning failure with a reason code and a message safe to show the client (it holds no token,
/// key or client address).</summary>
public class ProvisioningException : Exception
{
    public ProvisioningException(ProvisioningError error, string message, Exception? inner = null)
        : base(message, inner) => Error = error;

    public ProvisioningError Error { get; }
}

/// <summary>A package refused by the trust policy; carries the verifier's counts for the client.</summary>
public sealed class PackageRefusedException(PackageVerdict verdict)
    : ProvisioningException(ProvisioningError.PackageRefused,
        $"not enough valid signatures: {verdict.Found} found, {verdict.Valid} valid, {verdict.Required} required")
{
    public PackageVerdict Verdict { get; } = verdict;
}
