using System.IO.Compression;
using Checkpointing.Formats.Interop.Pickle;

namespace Checkpointing.Formats.Interop.Torch;

/// <summary>
/// Reads a <c>torch.save</c> file (the zip format of torch ≥ 1.6) into the checkpoint value model
/// (see <see cref="PickleValues"/>): tensors become C-ordered <see cref="HostTensor"/>s. The file is
/// untrusted: reading it stays within a <see cref="ReadBudget"/>.
/// </summary>
public static class PthReader
{
    /// <summary>Reads the <c>torch.save</c> file at <paramref name="path"/>; errors report its file name.</summary>
    /// <param name="path">the <c>.pth</c>/<c>.pt</c> file</param>
    /// <param name="budget">the limits (<see cref="ReadBudget.Default"/> when null); the file's size is its length</param>
    /// <exception cref="CheckpointFormatException">The file is not a torch.save zip (a legacy, pre-1.6 file included), is damaged, or exceeds the budget.</exception>
    public static object? Read(string path, ReadBudget? budget = null)
    {
        using var file = File.OpenRead(path);
        return Read(file, Path.GetFileName(path), budget);
    }

    /// <param name="stream">a seekable stream over the whole file</param>
    /// <param name="source">the name errors report</param>
    /// <param name="budget">the limits (<see cref="ReadBudget.Default"/> when null); the file's size is the stream's length</param>
    public static object? Read(Stream stream, string source, ReadBudget? budget = null)
    {
        var meter = new BudgetMeter(budget ?? ReadBudget.Default, source, stream.Length - stream.Position);
        CheckSignature(stream, source);
        using var archive = OpenZip(stream, source);
        var pickle = FindDataPickle(archive, source);
        var prefix = pickle.FullName[..^"data.pkl".Length];
        if (archive.GetEntry(prefix + "byteorder") is { } byteOrder && ZipRecords.ReadText(byteOrder, meter).Trim() != "little")
            throw new CheckpointFormatException(source, "byteorder", "the checkpoint was saved on a big-endian machine; only little-endian files are supported");
        var storages = new StorageRecords(archive, prefix, meter);
        var raw = PickleMachine.Run(ZipRecords.ReadAll(pickle, meter), TorchGlobals.Table, meter, storages.Load);
        return PickleValues.ToStateValue(raw, meter);
    }

    /// <summary>Tells the legacy (torch &lt; 1.6, a bare pickle stream) and unknown formats apart from a zip.</summary>
    private static void CheckSignature(Stream stream, string source)
    {
        Span<byte> head = stackalloc byte[4];
        var start = stream.Position;
        var read = stream.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        stream.Position = start;
        if (read >= 2 && head[0] == (byte)'P' && head[1] == (byte)'K') return;
        if (read >= 1 && head[0] == 0x80)
            throw new CheckpointFormatException(source, "legacy format", "legacy torch.save format (torch < 1.6) is not supported; re-save with torch>=1.6");
        throw new CheckpointFormatException(source, "zip", "not a torch.save file: no zip signature");
    }

    private static ZipArchive OpenZip(Stream stream, string source)
    {
        try
        {
            var archive = new ZipArchive(stream, ZipArchiveMode.Read, leaveOpen: true);
            try
            {
                _ = archive.Entries.Count; // the central directory is read lazily; damage there must surface here
                return archive;
            }
            catch
            {
                archive.Dispose();
                throw;
            }
        }
        catch (InvalidDataException e)
        {
            throw new CheckpointFormatException(source, "zip", $"the zip directory is unreadable ({e.Message}); the file is truncated or damaged", e);
        }
    }

    /// <summary>The pickle is <c>&lt;folder&gt;/data.pkl</c>; the folder is <c>archive</c> or, before torch 2, the file's stem.</summary>
    private static ZipArchiveEntry FindDataPickle(ZipArchive archive, string source)
    {
        var candidates = archive.Entries.Where(e => e.FullName.EndsWith("/data.pkl", StringComparison.Ordinal) && e.FullName.IndexOf('/') == e.FullName.Length - "/data.pkl".Length).ToList();
        return candidates switch
        {
            [var single] => single,
            [] => throw new CheckpointFormatException(source, "data.pkl", "the zip has no <folder>/data.pkl record; it is not a torch.save file"),
            _ => throw new CheckpointFormatException(source, "data.pkl", $"the zip has {candidates.Count} data.pkl records: {string.Join(", ", candidates.Select(c => c.FullName))}"),
        };
    }

    /// <summary>Resolves persistent ids <c>('storage', storage_type, key, location, numel)</c>, reading each record once.</summary>
    private sealed class StorageRecords(ZipArchive archive, string prefix, BudgetMeter meter)
    {
        private readonly Dictionary<string, byte[]> _read = new(StringComparer.Ordinal);

        public object? Load(object? id)
        {
            if (id is not object?[] { Length: 5 } fields || fields[0] is not "storage" || fields[1] is not PyGlobal type
                || fields[2] is not string key || fields[3] is not string || fields[4] is not long numel || numel < 0)
                throw new PickleDataException("persistent id is not ('storage', type, key, location, numel)", "storage");
            if (!TorchGlobals.StorageTypes.TryGetValue(type.Name, out var dtype))
                throw new PickleDataException($"'{type.Name}' is not a storage type", "storage");
            if (!_read.TryGetValue(key, out var bytes))
            {
                var entry = archive.GetEntry($"{prefix}data/{key}") ?? throw new PickleDataException($"storage record data/{key} is missing", "storage");
                bytes = ZipRecords.ReadAll(entry, meter);
                _read[key] = bytes;
            }
            var expected = (decimal)numel * dtype.ElementSize();
            if (bytes.LongLength != expected)
                throw new PickleDataException($"storage record data/{key} holds {bytes.LongLength} bytes, but {numel} elements of {dtype} need {expected}", "storage");
            return new TorchStorage(key, dtype, numel, bytes);
        }
    }
}
