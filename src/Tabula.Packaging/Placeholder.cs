namespace Tabula.Packaging; internal static class Placeholder { }
