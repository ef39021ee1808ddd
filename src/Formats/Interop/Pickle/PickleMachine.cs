using System.Buffers.Binary;
using System.Globalization;
using System.Text;

namespace Checkpointing.Formats.Interop.Pickle;

/// <summary>
/// Runs a pickle program (protocols 0–5) over an in-memory buffer without ever executing Python:
/// every GLOBAL is looked up in an allow-list when it is read, so a refused name fails the load
/// before anything is constructed or called. Values stay Python-shaped (<see cref="PyDict"/>,
/// tuples as <c>object?[]</c>, lists, <see cref="PySet"/>, long, double, string, byte[]) until
/// <see cref="PickleValues"/> turns them into the checkpoint value model.
/// </summary>
/// <remarks>
/// Razorvine.Pickle was the planned base, but 1.5.0 cannot enforce an allow-list (global lookup is
/// private and unknown names silently become ClassDict objects), returns dicts as unordered
/// Hashtables (Python's key order is lost), and keeps its constructors in a process-wide registry
/// that TorchSharp.PyBridge also writes to. A pickle VM is small enough to own outright.
/// </remarks>
internal sealed class PickleMachine
{
    private const int HighestProtocol = 5;
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private readonly byte[] _data;
    private readonly PickleGlobals _globals;
    private readonly Func<object?, object?>? _persistentLoad;
    private readonly BudgetMeter _meter;
    private readonly List<object?> _stack = [];
    private readonly List<int> _marks = [];
    private readonly Dictionary<long, object?> _memo = [];
    private int _position;

    private PickleMachine(byte[] data, PickleGlobals globals, BudgetMeter meter, Func<object?, object?>? persistentLoad)
    {
        _data = data;
        _globals = globals;
        _meter = meter;
        _persistentLoad = persistentLoad;
    }

    /// <summary>
    /// Unpickles <paramref name="data"/> within <paramref name="meter"/>'s budget; every failure is a
    /// <see cref="CheckpointFormatException"/> naming the meter's source.
    /// </summary>
    public static object? Run(byte[] data, PickleGlobals globals, BudgetMeter meter, Func<object?, object?>? persistentLoad = null)
    {
        try
        {
            return new PickleMachine(data, globals, meter, persistentLoad).Execute();
        }
        catch (PickleDataException e)
        {
            throw new CheckpointFormatException(meter.Source, e.Check, e.Message, e);
        }
    }

    private object? Execute()
    {
        while (true)
        {
            _meter.Tick();
            var opcode = ReadByte();
            switch (opcode)
            {
                case (byte)'.': return Pop(); // STOP
                case 0x80: // PROTO
                    var protocol = ReadByte();
                    if (protocol > HighestProtocol) throw new PickleDataException($"unsupported pickle protocol {protocol}");
                    break;
                case 0x95: ReadSpan(8); break; // FRAME: framing only helps streaming readers
                case (byte)'(': _marks.Add(_stack.Count); break;
                case (byte)'0': // POP
                    if (_marks.Count > 0 && _stack.Count == _marks[^1]) PopMark();
                    else Pop();
                    break;
                case (byte)'1': PopMark(); break;
                case (byte)'2': Push(Peek()); break;

                case (byte)'N': Push(null); break;
                case 0x88: Push(true); break;
                case 0x89: Push(false); break;
                case (byte)'I': Push(ParseIntLine(ReadLine())); break;
                case (byte)'J': Push((long)BinaryPrimitives.ReadInt32LittleEndian(ReadSpan(4))); break;
                case (byte)'K': Push((long)ReadByte()); break;
                case (byte)'M': Push((long)BinaryPrimitives.ReadUInt16LittleEndian(ReadSpan(2))); break;
                case (byte)'L': Push(ParseLong(ReadLine().TrimEnd('L'))); break;
                case 0x8a: Push(DecodeLong(ReadSpan(ReadByte()))); break; // LONG1
                case 0x8b: Push(DecodeLong(ReadSpan(ReadLength(4)))); break; // LONG4
                case (byte)'F': Push(ParseFloat(ReadLine())); break;
                case (byte)'G': Push(BinaryPrimitives.ReadDoubleBigEndian(ReadSpan(8))); break;

                // Python 2 str: bytes that Python 3 reads with encoding='latin1', as torch and detectron2 do.
                case (byte)'S': Push(Latin1(PythonEscapes.DecodeQuoted(ReadLine()))); break;
                case (byte)'T': Push(Latin1(ReadSpan(ReadLength(4)))); break;
                case (byte)'U': Push(Latin1(ReadSpan(ReadByte()))); break;
                case (byte)'V': Push(PythonEscapes.DecodeRawUnicode(ReadLine())); break;
                case (byte)'X': Push(Utf8(ReadSpan(ReadLength(4)))); break;
                case 0x8c: Push(Utf8(ReadSpan(ReadByte()))); break; // SHORT_BINUNICODE
                case 0x8d: Push(Utf8(ReadSpan(ReadLength(8)))); break; // BINUNICODE8
                case (byte)'B': Push(ReadSpan(ReadLength(4)).ToArray()); break; // BINBYTES
                case (byte)'C': Push(ReadSpan(ReadByte()).ToArray()); break; // SHORT_BINBYTES
                case 0x8e or 0x96: Push(ReadSpan(ReadLength(8)).ToArray()); break; // BINBYTES8, BYTEARRAY8
                case 0x97: throw new PickleDataException("out-of-band buffers (NEXT_BUFFER) are not supported");
                case 0x98: if (Peek() is not byte[]) throw new PickleDataException("READONLY_BUFFER applied to a non-buffer"); break;

                case (byte)')': Push(Array.Empty<object?>()); break;
                case (byte)'t': Push(Stored(PopMark()).ToArray()); break;
                case 0x85: Push(PopItems(1)); break;
                case 0x86: Push(PopItems(2)); break;
                case 0x87: Push(PopItems(3)); break;
                case (byte)']': Push(new List<object?>()); break;
                case (byte)'l': Push(Stored(PopMark())); break;
                case (byte)'a': var item = Pop(); _meter.ChargeObjects(1); PeekAs<List<object?>>("APPEND").Add(item); break;
                case (byte)'e': var items = Stored(PopMark()); PeekAs<List<object?>>("APPENDS").AddRange(items); break;
                case (byte)'}': Push(new PyDict(isOrderedDict: false, _meter)); break;
                case (byte)'d': Push(SetItems(new PyDict(isOrderedDict: false, _meter), PopMark())); break;
                case (byte)'s': var value = Pop(); var key = Pop(); PeekAs<PyDict>("SETITEM").Set(key, value); break;
                case (byte)'u': var pairs = PopMark(); SetItems(PeekAs<PyDict>("SETITEMS"), pairs); break;
                case 0x8f: Push(new PySet()); break;
                case 0x90: var added = Stored(PopMark()); PeekAs<PySet>("ADDITEMS").Items.AddRange(added); break;
                case 0x91: var frozen = new PySet(); frozen.Items.AddRange(Stored(PopMark())); Push(frozen); break;

                case (byte)'g': Push(MemoGet(ParseLong(ReadLine()))); break;
                case (byte)'h': Push(MemoGet(ReadByte())); break;
                case (byte)'j': Push(MemoGet(BinaryPrimitives.ReadUInt32LittleEndian(ReadSpan(4)))); break;
                case (byte)'p': MemoPut(ParseLong(ReadLine())); break;
                case (byte)'q': MemoPut(ReadByte()); break;
                case (byte)'r': MemoPut(BinaryPrimitives.ReadUInt32LittleEndian(ReadSpan(4))); break;
                case 0x94: MemoPut(_memo.Count); break; // MEMOIZE

                case (byte)'c': var module = ReadLine(); Push(_globals.Resolve(module, ReadLine())); break;
                case 0x93: var name = PopAs<string>("STACK_GLOBAL name"); Push(_globals.Resolve(PopAs<string>("STACK_GLOBAL module"), name)); break;
                case (byte)'i': // INST: class named inline, arguments since the mark
                    var instModule = ReadLine();
                    var instClass = _globals.Resolve(instModule, ReadLine());
                    Push(instClass.Call(PopMark().ToArray(), _meter));
                    break;
                case (byte)'o': // OBJ: class and arguments since the mark
                    var objItems = PopMark();
                    if (objItems.Count == 0 || objItems[0] is not PyGlobal objClass) throw new PickleDataException("OBJ without a class");
                    Push(objClass.Call(objItems.Skip(1).ToArray(), _meter));
                    break;
                case (byte)'R' or 0x81: // REDUCE, NEWOBJ: callable(*args); NEWOBJ's cls.__new__ is the same for the allowed classes
                    var args = PopAs<object?[]>("REDUCE arguments");
                    Push(PopAs<PyGlobal>("REDUCE callable").Call(args, _meter));
                    break;
                case 0x92: // NEWOBJ_EX
                    if (PopAs<PyDict>("NEWOBJ_EX keywords").Items.Count > 0) throw new PickleDataException("NEWOBJ_EX with keyword arguments is not supported");
                    var exArgs = PopAs<object?[]>("NEWOBJ_EX arguments");
                    Push(PopAs<PyGlobal>("NEWOBJ_EX class").Call(exArgs, _meter));
                    break;
                case (byte)'b': var state = Pop(); PeekAs<IPickleBuildable>("BUILD").SetState(state); break;
                case (byte)'P': Push(PersistentLoad(ReadLine())); break;
                case (byte)'Q': Push(PersistentLoad(Pop())); break;
                case 0x82 or 0x83 or 0x84: throw new PickleDataException("copyreg extension codes (EXT1/2/4) are not supported");
                default: throw new PickleDataException($"unknown opcode 0x{opcode:x2} at offset {_position - 1}");
            }
        }
    }

    private object? PersistentLoad(object? id) =>
        _persistentLoad is null ? throw new PickleDataException("persistent id found, but this file format has no external records") : _persistentLoad(id);

    private static PyDict SetItems(PyDict dict, List<object?> pairs)
    {
        if (pairs.Count % 2 != 0) throw new PickleDataException("SETITEMS with an odd number of items");
        for (var i = 0; i < pairs.Count; i += 2) dict.Set(pairs[i], pairs[i + 1]);
        return dict;
    }

    /// <summary>Items moved from the stack into a container count against <see cref="ReadBudget.MaxObjects"/>.</summary>
    private List<object?> Stored(List<object?> items)
    {
        _meter.ChargeObjects(items.Count);
        return items;
    }

    private void MemoPut(long index)
    {
        var value = Peek();
        if (!_memo.ContainsKey(index) && _memo.Count >= _meter.Budget.MaxMemoEntries)
            throw _meter.Exceeded($"the pickle writes more than {_meter.Budget.MaxMemoEntries} memo entries (limit {nameof(ReadBudget.MaxMemoEntries)} = {_meter.Budget.MaxMemoEntries})");
        _memo[index] = value;
    }

    private object? MemoGet(long index) =>
        _memo.TryGetValue(index, out var value) ? value : throw new PickleDataException($"memo entry {index} is read before it is written");

    // ---- stack ----

    private int Floor => _marks.Count > 0 ? _marks[^1] : 0;

    private void Push(object? value) => _stack.Add(value);

    private object? Peek() => _stack.Count > Floor ? _stack[^1] : throw new PickleDataException("stack underflow");

    private object? Pop()
    {
        var value = Peek();
        _stack.RemoveAt(_stack.Count - 1);
        return value;
    }

    private T PeekAs<T>(string what) where T : class =>
        Peek() as T ?? throw new PickleDataException($"{what} applied to a {PyDict.PyTypeName(_stack[^1])}");

    private T PopAs<T>(string what) where T : class =>
        Pop() as T ?? throw new PickleDataException($"{what} is not a {typeof(T).Name}");

    private object?[] PopItems(int count)
    {
        if (_stack.Count - Floor < count) throw new PickleDataException("stack underflow");
        _meter.ChargeObjects(count);
        var items = _stack.GetRange(_stack.Count - count, count).ToArray();
        _stack.RemoveRange(_stack.Count - count, count);
        return items;
    }

    private List<object?> PopMark()
    {
        if (_marks.Count == 0) throw new PickleDataException("no MARK on the stack");
        var mark = _marks[^1];
        _marks.RemoveAt(_marks.Count - 1);
        var items = _stack.GetRange(mark, _stack.Count - mark);
        _stack.RemoveRange(mark, _stack.Count - mark);
        return items;
    }

    // ---- input ----

    private byte ReadByte() => _position < _data.Length ? _data[_position++] : throw Truncated();

    private ReadOnlySpan<byte> ReadSpan(int length)
    {
        if (length > _data.Length - _position) throw Truncated();
        var span = _data.AsSpan(_position, length);
        _position += length;
        return span;
    }

    /// <summary>A little-endian length of <paramref name="size"/> bytes, checked against what is left.</summary>
    private int ReadLength(int size)
    {
        var span = ReadSpan(size);
        var length = size == 4 ? BinaryPrimitives.ReadUInt32LittleEndian(span) : BinaryPrimitives.ReadUInt64LittleEndian(span);
        return length <= (ulong)(_data.Length - _position) ? (int)length : throw Truncated();
    }

    private string ReadLine()
    {
        var end = Array.IndexOf(_data, (byte)'\n', _position);
        if (end < 0) throw Truncated();
        var line = Latin1(_data.AsSpan(_position, end - _position));
        _position = end + 1;
        return line;
    }

    private PickleDataException Truncated() => new($"stream ends at offset {_data.Length} inside an instruction (truncated file?)");

    // ---- scalars ----

    private static string Latin1(ReadOnlySpan<byte> bytes) => Encoding.Latin1.GetString(bytes);

    private static string Utf8(ReadOnlySpan<byte> bytes)
    {
        try
        {
            return StrictUtf8.GetString(bytes);
        }
        catch (DecoderFallbackException e)
        {
            throw new PickleDataException($"string is not valid UTF-8: {e.Message}");
        }
    }

    private static object ParseIntLine(string text) => text switch
    {
        "00" => false, // protocol 0 spells booleans as INT 00 / 01
        "01" => true,
        _ => ParseLong(text),
    };

    private static long ParseLong(string text) =>
        long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value)
            ? value
            : throw new PickleDataException($"integer '{text}' is not a 64-bit integer");

    private static double ParseFloat(string text) =>
        double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value)
            ? value
            : throw new PickleDataException($"float '{text}' is malformed");

    /// <summary>LONG1/LONG4 payload: little-endian two's complement.</summary>
    private static long DecodeLong(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length > 8) throw new PickleDataException($"a {bytes.Length}-byte integer does not fit in 64 bits");
        if (bytes.Length == 0) return 0;
        Span<byte> padded = stackalloc byte[8];
        padded.Fill((bytes[^1] & 0x80) != 0 ? (byte)0xff : (byte)0);
        bytes.CopyTo(padded);
        return BinaryPrimitives.ReadInt64LittleEndian(padded);
    }
}
