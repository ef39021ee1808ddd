using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;

namespace Checkpointing.TestSupport;

/// <summary>
/// Small hostile pickles and torch.save zips, written opcode by opcode as an attacker would: each
/// one took the first release down (gigabytes of memory, a stack overflow or an unhandled exception).
/// </summary>
public static class HostileFiles
{
    /// <summary>30 levels of 10 memo references each: ~775 bytes that stand for 10^30 strings.</summary>
    public static byte[] BillionLaughs(int levels = 30, int width = 10)
    {
        var p = new Program();
        p.Unicode("lol").Op('q', 0);
        for (var level = 1; level <= levels; level++)
        {
            p.Op(']').Op('q', (byte)level).Op('(');
            for (var i = 0; i < width; i++) p.Op('h', (byte)(level - 1));
            p.Op('e');
        }
        return p.Stop();
    }

    /// <summary>{((((...),),),): None} with the key tuple nested <paramref name="depth"/> levels deep.</summary>
    public static byte[] DeepTupleKey(int depth = 100_000)
    {
        var p = new Program().Op('}').Op(')');
        for (var i = 0; i < depth; i++) p.Op(0x85); // TUPLE1
        return p.Op('N').Op('s').Stop();
    }

    /// <summary>[[[...]]] nested <paramref name="depth"/> levels deep.</summary>
    public static byte[] DeepList(int depth = 100_000)
    {
        var p = new Program();
        for (var i = 0; i < depth; i++) p.Op(']');
        for (var i = 1; i < depth; i++) p.Op('a');
        return p.Stop();
    }

    /// <summary>l = []; l.append(l)</summary>
    public static byte[] CyclicList() => new Program().Op(']').Op('q', 0).Op('h', 0).Op('a').Stop();

    /// <summary>d = {}; d["self"] = d</summary>
    public static byte[] CyclicDict() => new Program().Op('}').Op('q', 0).Unicode("self").Op('h', 0).Op('s').Stop();

    /// <summary>A list of <paramref name="copies"/> sets, each <c>set(l)</c> of one shared <paramref name="items"/>-item list.</summary>
    public static byte[] SetCopies(int items = 10_000, int copies = 2_000)
    {
        var p = new Program().Global("builtins", "set").Op('q', 0).Op('0');
        p.Op(']').Op('(');
        for (var i = 0; i < items; i++) p.Op('K', 1);
        p.Op('e').Op(0x85).Op('q', 1).Op('0'); // (list,) in memo 1
        p.Op(']');
        for (var i = 0; i < copies; i++) p.Op('h', 0).Op('h', 1).Op('R').Op('a');
        return p.Stop();
    }

    /// <summary>A list of <paramref name="copies"/> <c>_codecs.encode(s, 'latin1')</c> of one shared <paramref name="chars"/>-char string.</summary>
    public static byte[] EncodeCopies(int chars = 256 << 10, int copies = 2_000)
    {
        var p = new Program().Global("_codecs", "encode").Op('q', 0).Op('0');
        p.Unicode(new string('a', chars)).Unicode("latin1").Op(0x86).Op('q', 1).Op('0');
        p.Op(']');
        for (var i = 0; i < copies; i++) p.Op('h', 0).Op('h', 1).Op('R').Op('a');
        return p.Stop();
    }

    /// <summary>A .pth whose tensor views a 4-element float storage with the given sizes and strides.</summary>
    public static byte[] ViewPth(long[] size, long[] stride, long offset = 0) =>
        TorchZip(TensorPickle(numel: 4, offset, size, stride), new byte[16]);

    /// <summary>A .pth whose data.pkl is a pickled bytes object of <paramref name="inflatedBytes"/> zeros, deflated (about 1000:1).</summary>
    public static byte[] DeflateBombPth(int inflatedBytes = 16 << 20)
    {
        var pickle = new byte[inflatedBytes];
        pickle[0] = 0x80;
        pickle[1] = 2;
        pickle[2] = (byte)'B'; // BINBYTES
        BinaryPrimitives.WriteInt32LittleEndian(pickle.AsSpan(3), inflatedBytes - 8);
        pickle[^1] = (byte)'.';
        return Zip(CompressionLevel.SmallestSize, ("archive/data.pkl", pickle), ("archive/version", "3\n"u8.ToArray()));
    }

    /// <summary>A torch.save-shaped zip (records stored, as torch writes them) with one storage record.</summary>
    public static byte[] TorchZip(byte[] dataPkl, byte[] storage) =>
        Zip(CompressionLevel.NoCompression, ("archive/data.pkl", dataPkl), ("archive/data/0", storage), ("archive/version", "3\n"u8.ToArray()));

    /// <summary><c>_rebuild_tensor_v2(FloatStorage "0" of numel, offset, size, stride, False, OrderedDict())</c>.</summary>
    public static byte[] TensorPickle(long numel, long offset, long[] size, long[] stride)
    {
        var p = new Program().Global("torch._utils", "_rebuild_tensor_v2").Op('(');
        p.Op('(').Unicode("storage").Global("torch", "FloatStorage").Unicode("0").Unicode("cpu").Long(numel).Op('t').Op('Q');
        p.Long(offset).Op('(');
        foreach (var s in size) p.Long(s);
        p.Op('t').Op('(');
        foreach (var s in stride) p.Long(s);
        p.Op('t').Op(0x89).Global("collections", "OrderedDict").Op(')').Op('R').Op('t').Op('R');
        return p.Stop();
    }

    /// <summary>A zip archive of <paramref name="records"/> stored uncompressed, as torch.save writes them.</summary>
    public static byte[] StoredZip(IEnumerable<(string Name, byte[] Data)> records) => Zip(CompressionLevel.NoCompression, [.. records]);

    public static byte[] Zip(CompressionLevel level, params (string Name, byte[] Data)[] records)
    {
        using var buffer = new MemoryStream();
        using (var zip = new ZipArchive(buffer, ZipArchiveMode.Create, leaveOpen: true))
        {
            foreach (var (name, data) in records)
            {
                using var stream = zip.CreateEntry(name, level).Open();
                stream.Write(data);
            }
        }
        return buffer.ToArray();
    }

    /// <summary>A protocol-2 pickle program under construction.</summary>
    private sealed class Program
    {
        private readonly MemoryStream _bytes = new();

        public Program() => Op(0x80).Op(2);

        public Program Op(char opcode) => Op((byte)opcode);

        public Program Op(byte opcode)
        {
            _bytes.WriteByte(opcode);
            return this;
        }

        public Program Op(char opcode, byte argument) => Op((byte)opcode).Op(argument);

        public Program Unicode(string text)
        {
            var utf8 = Encoding.UTF8.GetBytes(text);
            Span<byte> length = stackalloc byte[4];
            BinaryPrimitives.WriteInt32LittleEndian(length, utf8.Length);
            Op('X');
            _bytes.Write(length);
            _bytes.Write(utf8);
            return this;
        }

        /// <summary>LONG1 with 8 bytes: any 64-bit value.</summary>
        public Program Long(long value)
        {
            Span<byte> bytes = stackalloc byte[8];
            BinaryPrimitives.WriteInt64LittleEndian(bytes, value);
            Op(0x8a).Op(8);
            _bytes.Write(bytes);
            return this;
        }

        public Program Global(string module, string name)
        {
            Op('c');
            _bytes.Write(Encoding.ASCII.GetBytes($"{module}\n{name}\n"));
            return this;
        }

        public byte[] Stop() => Op('.')._bytes.ToArray();
    }
}
