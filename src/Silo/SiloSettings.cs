namespace Checkpointing.Silo;

/// <summary>How the silo joins a cluster and where it keeps state (section "Silo" and "Storage").</summary>
public sealed class SiloSettings
{
    public const string Section = "Silo";

    /// <summary>
    /// "Dev": localhost clustering, one or more silos on this machine. "Cluster": Azure Table membership. "Kubernetes": Azure
    /// Table membership in pods: the pod's name, IP and namespace from the downward API (POD_NAME, POD_IP, POD_NAMESPACE),
    /// listening on all interfaces, and the Kubernetes API told the pod's cluster labels.
    /// </summary>
    public string Mode { get; set; } = "Dev";
    public string ClusterId { get; set; } = "checkpointing-dev";
    public string ServiceId { get; set; } = "checkpointing";
    public int SiloPort { get; set; } = 11111;
    public int GatewayPort { get; set; } = 30000;
    /// <summary>Dev mode with several silos: the first silo's port, which the others join.</summary>
    public int? PrimarySiloPort { get; set; }
    /// <summary>Cluster mode: the address other silos and clients reach this one at: an IP address or a host name (resolved at start).</summary>
    public string AdvertisedAddress { get; set; } = "127.0.0.1";
    /// <summary>The HTTP port: liveness (/healthz), readiness (/readyz), /stats, the API (/api/v1) and /openapi/v1.json.</summary>
    public int? HttpPort { get; set; }
    /// <summary>The HTTP port's first name, still honoured when <see cref="HttpPort"/> is not set.</summary>
    public int HealthPort { get; set; } = 8080;
    /// <summary>
    /// The address HTTP listens on: loopback by default, all interfaces in Kubernetes mode (the kubelet probes the pod's
    /// IP); the host's address (or 0.0.0.0) to serve the API, dashboard and /metrics to other machines.
    /// </summary>
    public string? HttpAddress { get; set; }

    /// <summary>The address HTTP listens on, after the mode's default.</summary>
    public string EffectiveHttpAddress => HttpAddress ?? (Mode == "Kubernetes" ? "0.0.0.0" : "127.0.0.1");
}
