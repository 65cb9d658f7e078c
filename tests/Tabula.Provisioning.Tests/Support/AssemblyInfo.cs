// The server, its store and its tests are Linux-only (fsync of directories, link(2), Unix file modes).
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
