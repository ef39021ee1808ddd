using System.Collections;
using System.Globalization;
using System.IO.Compression;
using Checkpointing.Formats.Interop.Pickle;

namespace Checkpointing.Formats.Interop.Torch;

/// <summary>
/// Writes a value tree as a <c>torch.save</c> zip that <c>torch.load</c> reads: records stored
/// uncompressed, a pickle (protocol 2) whose persistent ids name one storage record per tensor,
/// each streamed from its <see cref="ITensorSource"/> so memory stays bounded by one tensor.
/// </summary>
public static class PthWriter
{
    /// <summary>
    /// Writes <paramref name="root"/> to the file at <paramref name="path"/> and flushes it to disk. The file is created or
    /// overwritten in place, not atomically: a write that fails midway leaves a partial file.
    /// </summary>
    /// <param name="path">the file to write; its name without extension becomes the zip's folder name</param>
    /// <param name="root">the value model of <see cref="StateTree"/>; <see cref="PythonOrderedDict"/>s become OrderedDicts</param>
    /// <param name="asTensor">returns the tensor behind any leaf that is not a plain value (null: not a tensor)</param>
    public static void Write(string path, object? root, Func<object, ITensorSource?> asTensor)
    {
        using var file = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, bufferSize: 1 << 20);
        Write(file, root, asTensor, Path.GetFileNameWithoutExtension(path));
        file.Flush(flushToDisk: true);
    }

    /// <summary>Writes <paramref name="root"/> as a torch.save zip to <paramref name="destination"/>, which is left open.</summary>
    /// <param name="destination">where the zip is written</param>
    /// <param name="root">the value model of <see cref="StateTree"/>; <see cref="PythonOrderedDict"/>s become OrderedDicts</param>
    /// <param name="asTensor">returns the tensor behind any leaf that is not a plain value (null: not a tensor)</param>
    /// <param name="archiveName">the zip's folder name; torch ignores it, as long as every record shares it</param>
    public static void Write(Stream destination, object? root, Func<object, ITensorSource?> asTensor, string archiveName = "archive")
    {
        var pickler = new TreePickler(asTensor);
        pickler.Value(root, "");
        var pickle = pickler.Finish();
        using var zip = new ZipArchive(destination, ZipArchiveMode.Create, leaveOpen: true);
        WriteRecord(zip, $"{archiveName}/data.pkl", s => s.Write(pickle));
        for (var key = 0; key < pickler.Storages.Count; key++)
        {
            var tensor = pickler.Storages[key];
            WriteRecord(zip, $"{archiveName}/data/{key}", s => WriteTensor(tensor, s));
        }
        WriteRecord(zip, $"{archiveName}/version", s => s.Write("3\n"u8)); // the zip format version torch 1.6–2.x writes
    }

    private static void WriteRecord(ZipArchive zip, string name, Action<Stream> write)
    {
        using var stream = zip.CreateEntry(name, CompressionLevel.NoCompression).Open();
        write(stream);
    }

    private static void WriteTensor(ITensorSource tensor, Stream record)
    {
        var expected = TensorDTypes.ByteLength(tensor.DType, tensor.Shape);
        var counted = new ChecksummingWriteStream(record);
        tensor.WriteTo(counted);
        if (counted.BytesWritten != expected)
            throw new InvalidOperationException($"A {tensor.DType}[{string.Join(", ", tensor.Shape)}] tensor wrote {counted.BytesWritten} bytes instead of {expected}.");
    }

    /// <summary>Pickles the tree; tensors become <c>_rebuild_tensor_v2</c> calls over storages numbered in order of appearance.</summary>
    private sealed class TreePickler(Func<object, ITensorSource?> asTensor)
    {
        private readonly PickleWriter _writer = new();
        private readonly Dictionary<object, int> _storageKeys = new(ReferenceEqualityComparer.Instance);

        public List<ITensorSource> Storages { get; } = [];

        public byte[] Finish() => _writer.Finish();

        public void Value(object? value, string path)
        {
            switch (value)
            {
                case null: _writer.None(); break;
                case string s: _writer.String(s); break;
                case bool b: _writer.Bool(b); break;
                case int or long or short or sbyte or byte or ushort or uint: _writer.Long(Convert.ToInt64(value, CultureInfo.InvariantCulture)); break;
                case float f: _writer.Double(f); break;
                case double d: _writer.Double(d); break;
                case PythonOrderedDict ordered:
                    _writer.Global("collections", "OrderedDict");
                    _writer.EmptyTuple();
                    _writer.Reduce();
                    Items(ordered.Select(p => new KeyValuePair<object, object?>(p.Key, p.Value)), path);
                    break;
                case IDictionary dict:
                    _writer.EmptyDict();
                    Items(Entries(dict), path);
                    break;
                case IReadOnlyDictionary<string, object?> dict:
                    _writer.EmptyDict();
                    Items(dict.Select(p => new KeyValuePair<object, object?>(p.Key, p.Value)), path);
                    break;
                case IList list:
                    _writer.EmptyList();
                    _writer.Mark();
                    for (var i = 0; i < list.Count; i++) Value(list[i], StateTree.Child(path, i.ToString(CultureInfo.InvariantCulture)));
                    _writer.AppendsFromMark();
                    break;
                default:
                    Tensor(value, asTensor(value) ?? throw new ArgumentException($"Value at '{path}' has type {value.GetType().FullName}, which a .pth file cannot hold (use strings, numbers, booleans, null, lists, dictionaries and tensors)"));
                    break;
            }
        }

        /// <summary>IDictionary's own enumerator yields DictionaryEntry; its IEnumerable one may not (OrderedDictionary yields KeyValuePair).</summary>
        private static IEnumerable<KeyValuePair<object, object?>> Entries(IDictionary dict)
        {
            var entry = dict.GetEnumerator();
            while (entry.MoveNext()) yield return new(entry.Key, entry.Value);
        }

        private void Items(IEnumerable<KeyValuePair<object, object?>> items, string path)
        {
            _writer.Mark();
            foreach (var (key, item) in items)
            {
                if (key is not (string or int or long)) throw new ArgumentException($"Key {key} at '{path}' is a {key.GetType().Name}; .pth keys must be strings or integers");
                Value(key, path);
                Value(item, StateTree.Child(path, Convert.ToString(key, CultureInfo.InvariantCulture)!));
            }
            _writer.SetItemsFromMark();
        }

        /// <summary>
        /// <c>_rebuild_tensor_v2(storage, 0, size, contiguous stride, False, OrderedDict())</c>. The same
        /// tensor object met twice shares one storage, so torch.load ties the two again.
        /// </summary>
        private void Tensor(object value, ITensorSource tensor)
        {
            if (!_storageKeys.TryGetValue(value, out var key))
            {
                key = Storages.Count;
                _storageKeys[value] = key;
                Storages.Add(tensor);
            }
            _writer.Global("torch._utils", "_rebuild_tensor_v2");
            _writer.Mark();
            _writer.Mark();
            _writer.String("storage");
            _writer.Global("torch", StorageClass(tensor.DType));
            _writer.String(key.ToString(CultureInfo.InvariantCulture));
            _writer.String("cpu");
            _writer.Long(tensor.Shape.Aggregate(1L, (a, b) => checked(a * b)));
            _writer.TupleFromMark();
            _writer.PersistentId();
            _writer.Long(0);
            LongTuple(tensor.Shape);
            LongTuple(ContiguousStrides(tensor.Shape));
            _writer.Bool(false);
            _writer.Global("collections", "OrderedDict");
            _writer.EmptyTuple();
            _writer.Reduce();
            _writer.TupleFromMark();
            _writer.Reduce();
        }

        private void LongTuple(long[] values)
        {
            _writer.Mark();
            foreach (var v in values) _writer.Long(v);
            _writer.TupleFromMark();
        }

        private static long[] ContiguousStrides(long[] shape)
        {
            var strides = new long[shape.Length];
            long stride = 1;
            for (var d = shape.Length - 1; d >= 0; d--)
            {
                strides[d] = stride;
                stride *= Math.Max(shape[d], 1);
            }
            return strides;
        }

        private static string StorageClass(TensorDType dtype) =>
            TorchGlobals.StorageTypes.FirstOrDefault(p => p.Value == dtype).Key?["torch.".Length..]
            ?? throw new NotSupportedException($"A .pth file cannot hold {dtype} tensors (torch.save has no legacy storage type for them); write .safetensors or a native checkpoint instead.");
    }
}
