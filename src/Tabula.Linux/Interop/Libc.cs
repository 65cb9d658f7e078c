namespace Tabula.Linux.Interop;

/// <summary>
/// Raw libc imports, one concern per partial file (dotnet/runtime's Interop layout). No logic here:
/// the typed wrappers in the namespace above turn return values into <see cref="LinuxException"/>s.
/// </summary>
/// <remarks>
/// "libc" is mapped to libc.so.6 by the runtime's loader; a static NativeAOT build binds these at
/// link time with <c>&lt;DirectPInvoke Include="libc" /&gt;</c>.
/// </remarks>
internal static partial class Libc
{
    internal const string Name = "libc";
}
