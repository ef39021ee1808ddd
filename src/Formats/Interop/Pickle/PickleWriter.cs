using System.Buffers.Binary;
using System.Text;

namespace Checkpointing.Formats.Interop.Pickle;

/// <summary>Emits pickle protocol 2 opcodes (what torch.save writes by default), one value at a time.</summary>
internal sealed class PickleWriter
{
    private readonly MemoryStream _buffer = new();

    public PickleWriter() => Op(0x80, 2); // PROTO 2

    public byte[] Finish()
    {
        Op((byte)'.'); // STOP
        return _buffer.ToArray();
    }

    public void Mark() => Op((byte)'(');
    public void None() => Op((byte)'N');
    public void Bool(bool value) => Op(value ? (byte)0x88 : (byte)0x89);
    public void EmptyTuple() => Op((byte)')');
    public void TupleFromMark() => Op((byte)'t');
    public void Reduce() => Op((byte)'R');
    public void PersistentId() => Op((byte)'Q'); // BINPERSID: the id is the tuple on the stack
    public void EmptyDict() => Op((byte)'}');
    public void SetItemsFromMark() => Op((byte)'u');
    public void EmptyList() => Op((byte)']');
    public void AppendsFromMark() => Op((byte)'e');

    public void Global(string module, string name)
    {
        Op((byte)'c');
        _buffer.Write(Encoding.ASCII.GetBytes($"{module}\n{name}\n"));
    }

    public void Long(long value)
    {
        if (value is >= int.MinValue and <= int.MaxValue)
        {
            Op((byte)'J'); // BININT
            Span<byte> int32 = stackalloc byte[4];
            BinaryPrimitives.WriteInt32LittleEndian(int32, (int)value);
            _buffer.Write(int32);
            return;
        }
        Span<byte> int64 = stackalloc byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(int64, value);
        Op(0x8a, 8); // LONG1 with 8 bytes of two's complement
        _buffer.Write(int64);
    }

    public void Double(double value)
    {
        Op((byte)'G'); // BINFLOAT, big-endian
        Span<byte> bytes = stackalloc byte[8];
        BinaryPrimitives.WriteDoubleBigEndian(bytes, value);
        _buffer.Write(bytes);
    }

    public void String(string value)
    {
        var utf8 = Encoding.UTF8.GetBytes(value);
        Op((byte)'X'); // BINUNICODE
        Span<byte> length = stackalloc byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(length, utf8.Length);
        _buffer.Write(length);
        _buffer.Write(utf8);
    }

    private void Op(byte opcode) => _buffer.WriteByte(opcode);

    private void Op(byte opcode, byte argument)
    {
        _buffer.WriteByte(opcode);
        _buffer.WriteByte(argument);
    }
}
