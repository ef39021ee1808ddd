namespace Checkpointing.Storage;

/// <summary>The checksum each upload request carries (see <see cref="AzureBlobStoreOptions.TransferChecksum"/>).</summary>
public enum TransferChecksum
{
    /// <summary>No per-request checksum; TLS and the shard's own CRC-64 protect the bytes.</summary>
    None,
    /// <summary>
    /// The storage service's CRC-64. The SDK sends it inside a structured-message body
    /// (<c>x-ms-structured-body</c>), which Azure Storage verifies but Azurite (3.37) does not
    /// understand: there every write fails, and a single-request write leaves an object holding the
    /// encoded bytes. Use it against Azure Storage only.
    /// </summary>
    StorageCrc64,
    /// <summary>MD5 (<c>Content-MD5</c>), for services or proxies that only check that.</summary>
    Md5,
}
