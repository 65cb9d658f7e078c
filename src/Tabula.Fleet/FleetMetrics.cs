using System.Globalization;
using System.Text;

namespace Tabula.Fleet;

/// <summary>
/// Prometheus counters and gauges of this instance. Aggregates only: no label ever holds a key, an
/// address, an account or a machine id (a relay's totals are labelled with its public hostname).
/// </summary>
public sealed class FleetMetrics
{
    public sealed class Counter(string name, string help)
    {
        private long value;
        public string Name { get; } = name;
        public string Help { get; } = help;
        public long Value => Interlocked.Read(ref value);
        public void Add(long delta) => Interlocked.Add(ref value, delta);
    }

    public Counter Enrollments { get; } = new("tabula_fleet_enrollments_total", "Machine enrollments accepted by this instance.");
    public Counter LoginFailures { get; } = new("tabula_fleet_login_failures_total", "Refused staff logins.");
    public Counter Snapshots { get; } = new("tabula_fleet_peer_snapshots_total", "Full peer snapshots sent to relays.");
    public Counter DeltasSent { get; } = new("tabula_fleet_peer_deltas_sent_total", "Peer deltas written to relay streams.");
    public Counter StreamsRevoked { get; } = new("tabula_fleet_peer_streams_revoked_total",
        "Peer streams ended because their relay's token was rotated or the machine left a state that receives peers.");
    public Counter Subscribers { get; } = new("tabula_fleet_peer_subscribers", "Relay peer streams open on this instance.");

    public Counter TicketsIssued { get; } = new("tabula_fleet_boot_tickets_issued_total", "Boot tickets issued by this instance.");
    public Counter TicketsRefused { get; } = new("tabula_fleet_boot_tickets_refused_total",
        "Boot ticket requests refused (forged, retired machine, class without a current release).");

    public IEnumerable<Counter> All => [Enrollments, LoginFailures, Snapshots, DeltasSent, StreamsRevoked, TicketsIssued, TicketsRefused];

    public static void AppendGauge(StringBuilder sb, string name, string help, IEnumerable<(string? Label, long Value)> values)
    {
        sb.Append("# HELP ").Append(name).Append(' ').Append(help).Append('\n');
        sb.Append("# TYPE ").Append(name).Append(" gauge\n");
        foreach (var (label, value) in values)
            sb.Append(name).Append(label is null ? "" : "{" + label + "}").Append(' ').Append(value.ToString(CultureInfo.InvariantCulture)).Append('\n');
    }

    public static void AppendCounter(StringBuilder sb, Counter c)
    {
        sb.Append("# HELP ").Append(c.Name).Append(' ').Append(c.Help).Append('\n');
        sb.Append("# TYPE ").Append(c.Name).Append(" counter\n");
        sb.Append(c.Name).Append(' ').Append(c.Value.ToString(CultureInfo.InvariantCulture)).Append('\n');
    }
}
