namespace Checkpointing.Core;

/// <summary>How a local save folder stores each checkpoint.</summary>
public enum CheckpointFormat
{
    /// <summary>A folder of safetensors shards and a manifest (checksummed, shardable).</summary>
    Native,

    /// <summary>One <c>NAME.pth</c> file that <c>torch.load</c> reads, as fvcore and detectron2 write it.</summary>
    Pth,
}
