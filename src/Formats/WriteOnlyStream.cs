namespace Checkpointing.Formats;

/// <summary>A forward-only sink for bytes a tensor writes: subclasses take <see cref="Write(ReadOnlySpan{byte})"/>; reading and seeking are not supported.</summary>
internal abstract class WriteOnlyStream : Stream
{
    /// <inheritdoc/>
    public abstract override void Write(ReadOnlySpan<byte> buffer);

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));
    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
}
