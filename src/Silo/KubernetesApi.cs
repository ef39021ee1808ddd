using k8s;
using Orleans.Hosting.Kubernetes;

namespace Checkpointing.Silo;

/// <summary>
/// How a silo in Kubernetes mode reaches the Kubernetes API: from inside its pod (the service account), or through the
/// file <c>KUBECONFIG</c> names when it is set, as kubectl does (a silo run outside the cluster, or a test's API server).
/// </summary>
public static class KubernetesApi
{
    public static void Configure(KubernetesHostingOptions options)
    {
        if (Environment.GetEnvironmentVariable("KUBECONFIG") is { Length: > 0 } file)
            options.GetClientConfiguration = () => KubernetesClientConfiguration.BuildConfigFromConfigFile(file);
    }
}
