using System.Diagnostics.CodeAnalysis;

namespace Tabula.Images;

/// <summary>Inputs to an image builder were unusable; <see cref="Reason"/> says how.</summary>
public sealed class ImageException : Exception
{
    ImageException(ImageError reason, string detail, Exception? inner)
        : base($"{reason}: {detail}", inner) => Reason = reason;

    /// <summary>What was wrong.</summary>
    public ImageError Reason { get; }

    [DoesNotReturn]
    internal static void Throw(ImageError reason, string detail, Exception? inner = null) =>
        throw new ImageException(reason, detail, inner);
}
