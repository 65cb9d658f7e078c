// The lab drives Linux only: namespaces, taps, QEMU, /proc.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
