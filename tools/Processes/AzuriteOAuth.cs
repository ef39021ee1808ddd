namespace Checkpointing.Processes;

/// <summary>
/// Azurite over https with OAuth ("basic": it checks a bearer token's issuer, audience and lifetime, not its
/// signature), so that a process can reach the development account as an identity instead of with its key.
/// </summary>
/// <param name="CertificatePath">The PEM certificate Azurite serves (its name must match the host, e.g. IP 127.0.0.1).</param>
/// <param name="KeyPath">The certificate's PEM private key.</param>
public sealed record AzuriteOAuth(string CertificatePath, string KeyPath);
