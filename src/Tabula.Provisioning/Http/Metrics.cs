using System.Collections.Concurrent;
using System.Text;

namespace Tabula.Provisioning.Http;

/// <summary>
/// Prometheus counters: requests by endpoint name and status code, bytes sent by endpoint, uploads by outcome.
/// Counts and bytes only: no label ever holds a client address, a machine label, a token or a path.
/// </summary>
public sealed class ProvisioningMetrics
{
    readonly ConcurrentDictionary<(string Endpoint, int Status), StrongBox> requests = new();
    readonly ConcurrentDictionary<string, StrongBox> bytesSent = new();
    readonly ConcurrentDictionary<string, StrongBox> uploads = new();
    long uploadBytes, channelMoves, refusedPerClient;

    sealed class StrongBox
    {
        public long Value;
    }

    public void Request(string endpoint, int status, long bytes)
    {
        Interlocked.Increment(ref requests.GetOrAdd((endpoint, status), _ => new StrongBox()).Value);
        if (bytes > 0)
            Interlocked.Add(ref bytesSent.GetOrAdd(endpoint, _ => new StrongBox()).Value, bytes);
    }

    public void Upload(string outcome, long bytes)
    {
        Interlocked.Increment(ref uploads.GetOrAdd(outcome, _ => new StrongBox()).Value);
        Interlocked.Add(ref uploadBytes, bytes);
    }

    public void ChannelMoved() => Interlocked.Increment(ref channelMoves);

    /// <summary>A connection closed for being over its client's <c>Limits:MaxConnectionsPerClient</c>.</summary>
    public void ConnectionRefusedPerClient() => Interlocked.Increment(ref refusedPerClient);

    /// <summary>Text exposition format 0.0.4.</summary>
    public string Render()
    {
        var s = new StringBuilder();
        s.Append("# HELP tabula_provisioning_requests_total Requests answered, by endpoint and status code.\n");
        s.Append("# TYPE tabula_provisioning_requests_total counter\n");
        foreach (var ((endpoint, status), box) in requests.OrderBy(r => r.Key))
            s.Append($"tabula_provisioning_requests_total{{endpoint=\"{endpoint}\",code=\"{status}\"}} {Volatile.Read(ref box.Value)}\n");
        s.Append("# HELP tabula_provisioning_response_bytes_total Response body bytes sent, by endpoint.\n");
        s.Append("# TYPE tabula_provisioning_response_bytes_total counter\n");
        foreach (var (endpoint, box) in bytesSent.OrderBy(b => b.Key))
            s.Append($"tabula_provisioning_response_bytes_total{{endpoint=\"{endpoint}\"}} {Volatile.Read(ref box.Value)}\n");
        s.Append("# HELP tabula_provisioning_uploads_total Package uploads, by outcome.\n");
        s.Append("# TYPE tabula_provisioning_uploads_total counter\n");
        foreach (var (outcome, box) in uploads.OrderBy(u => u.Key))
            s.Append($"tabula_provisioning_uploads_total{{outcome=\"{outcome}\"}} {Volatile.Read(ref box.Value)}\n");
        s.Append("# HELP tabula_provisioning_upload_bytes_total Archive bytes received in uploads.\n");
        s.Append("# TYPE tabula_provisioning_upload_bytes_total counter\n");
        s.Append($"tabula_provisioning_upload_bytes_total {Interlocked.Read(ref uploadBytes)}\n");
        s.Append("# HELP tabula_provisioning_channel_moves_total Channel moves (audited staff actions).\n");
        s.Append("# TYPE tabula_provisioning_channel_moves_total counter\n");
        s.Append($"tabula_provisioning_channel_moves_total {Interlocked.Read(ref channelMoves)}\n");
        s.Append("# HELP tabula_provisioning_connections_refused_per_client_total Connections closed for being over one client's connection cap.\n");
        s.Append("# TYPE tabula_provisioning_connections_refused_per_client_total counter\n");
        s.Append($"tabula_provisioning_connections_refused_per_client_total {Interlocked.Read(ref refusedPerClient)}\n");
        return s.ToString();
    }
}
