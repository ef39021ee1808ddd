using Checkpointing.Formats.Interop;
using Checkpointing.Formats.Interop.Pickle;
using Checkpointing.Formats.Interop.Torch;
using Checkpointing.TestSupport;

namespace Checkpointing.Formats.Tests.Interop;

/// <summary>
/// The hostile files a review found (see <see cref="HostileFiles"/>): each now fails with one
/// <see cref="CheckpointFormatException"/> naming the file and the limit, after allocating a bounded amount.
/// Memory is measured on the test's own thread (<see cref="GC.GetAllocatedBytesForCurrentThread"/>), so
/// tests running in parallel do not disturb it.
/// </summary>
public sealed class HostileInputTests
{
    private const long Mebibyte = 1 << 20;

    [Fact]
    public void Billion_laughs_of_memo_references_is_refused_by_the_object_limit()
    {
        var pickle = HostileFiles.BillionLaughs();
        Assert.True(pickle.Length < 800, $"the file is {pickle.Length} bytes");

        var (error, allocated) = Refused(() => SafeUnpickler.Load(pickle, "laughs.pkl"));

        Assert.Equal(BudgetMeter.Check, error.Check);
        Assert.StartsWith("laughs.pkl: ", error.Message);
        Assert.Contains("MaxObjects = 2000000", error.Message);
        Assert.True(allocated < 16 * Mebibyte, $"allocated {allocated} bytes");
    }

    [Fact]
    public void Dict_key_of_tuples_nested_100k_deep_is_refused_without_recursion()
    {
        // The first release recursed once per level here and the process died of a stack overflow
        // (exit 134); CliBudgetTests shows it in a child process.
        var (error, _) = Refused(() => SafeUnpickler.Load(HostileFiles.DeepTupleKey(), "deep-key.pkl"));

        Assert.Equal(BudgetMeter.Check, error.Check);
        Assert.Contains("MaxKeyItems = 256", error.Message);
    }

    [Fact]
    public void Values_nested_100k_deep_are_refused_by_the_depth_limit()
    {
        var (error, _) = Refused(() => SafeUnpickler.Load(HostileFiles.DeepList(), "deep-list.pkl"));

        Assert.Equal(BudgetMeter.Check, error.Check);
        Assert.Contains("MaxDepth = 64", error.Message);
    }

    [Fact]
    public void A_tuple_key_within_the_limit_still_works_and_compares_like_python()
    {
        var key = new object?[] { 1L, new object?[] { "a", 2.0 } };
        var sameKey = new object?[] { true, new object?[] { "a", 2L } };
        var meter = new BudgetMeter(ReadBudget.Default, "keys.pkl", 0);
        var dict = new PyDict(isOrderedDict: false, meter);

        dict.Set(key, "first");
        dict.Set(sameKey, "second");

        Assert.Equal("second", Assert.Single(dict.Items).Value);
    }

    [Theory]
    [InlineData("list")]
    [InlineData("dict")]
    public void A_cyclic_container_is_a_clear_error(string kind)
    {
        var pickle = kind == "list" ? HostileFiles.CyclicList() : HostileFiles.CyclicDict();

        var (error, _) = Refused(() => SafeUnpickler.Load(pickle, "cycle.pkl"));

        Assert.Equal("cycle", error.Check);
        Assert.Contains($"a {kind} contains itself", error.Message);
    }

    [Fact]
    public void A_shared_value_stays_shared()
    {
        // [x, x] with x = {"a": [1]}: the same converted object twice, not a copy.
        var pickle = new PickleWriter();
        pickle.EmptyList();
        pickle.Mark();
        pickle.EmptyDict();
        pickle.Mark();
        pickle.String("a");
        pickle.EmptyList();
        pickle.Mark();
        pickle.Long(1);
        pickle.AppendsFromMark();
        pickle.SetItemsFromMark();
        var bytes = pickle.Finish();
        // DUP (0x32 '2') the dict before APPENDS, then STOP: patch the program by hand.
        var program = bytes[..^1].Concat("2e."u8.ToArray()).ToArray();

        var list = Assert.IsType<List<object?>>(SafeUnpickler.Load(program, "shared.pkl"));

        Assert.Equal(2, list.Count);
        Assert.Same(list[0], list[1]);
    }

    [Fact]
    public void Stride_0_view_of_2_pow_28_elements_over_4_is_refused_before_allocating()
    {
        var file = HostileFiles.ViewPth(size: [1L << 28], stride: [0]);

        var (error, allocated) = Refused(() => PthReader.Read(new MemoryStream(file), "stride0.pth"));

        Assert.Equal(BudgetMeter.Check, error.Check);
        Assert.Contains("tensor view of storage '0' needs 1073741824 bytes", error.Message);
        Assert.Contains("MaterializedBytesFloor + MaterializedBytesPerFileByte", error.Message);
        Assert.True(allocated < 16 * Mebibyte, $"allocated {allocated} bytes");
    }

    [Fact]
    public void Stride_0_view_within_the_budget_is_materialized()
    {
        var tensor = Assert.IsType<HostTensor>(PthReader.Read(new MemoryStream(HostileFiles.ViewPth(size: [3, 2], stride: [0, 1])), "small.pth"));

        Assert.Equal([3L, 2L], tensor.Shape);
        Assert.Equal(24, tensor.Data.Length);
    }

    [Fact]
    public void View_whose_size_overflows_64_bits_is_a_tensor_view_error()
    {
        var file = HostileFiles.ViewPth(size: [1L << 62, 4], stride: [0, 0]);

        var (error, _) = Refused(() => PthReader.Read(new MemoryStream(file), "overflow.pth"));

        Assert.Equal("tensor view", error.Check);
        Assert.Contains("more elements than a 64-bit count holds", error.Message);
    }

    [Fact]
    public void Zip_record_deflated_1000_to_1_is_refused_before_inflating()
    {
        var file = HostileFiles.DeflateBombPth();
        Assert.True(file.Length < 64 << 10, $"the file is {file.Length} bytes");

        var (error, allocated) = Refused(() => PthReader.Read(new MemoryStream(file), "bomb.pth"));

        Assert.Equal(BudgetMeter.Check, error.Check);
        Assert.Contains("zip record archive/data.pkl inflates", error.Message);
        Assert.Contains("MaxCompressionRatio = 100:1", error.Message);
        Assert.True(allocated < 4 * Mebibyte, $"allocated {allocated} bytes");
    }

    [Fact]
    public void Zip_record_larger_than_the_materialized_budget_is_refused()
    {
        var file = HostileFiles.TorchZip(HostileFiles.TensorPickle(numel: 1024, offset: 0, size: [1024], stride: [1]), new byte[4096]);
        var budget = ReadBudget.Default with { MaterializedBytesFloor = 1024, MaterializedBytesPerFileByte = 0 };

        var error = Assert.Throws<CheckpointFormatException>(() => PthReader.Read(new MemoryStream(file), "big.pth", budget));

        Assert.Equal(BudgetMeter.Check, error.Check);
        Assert.Contains("zip record archive/", error.Message);
        Assert.Contains("= 1024)", error.Message);
    }

    /// <summary>Found by the fuzz suite: ZipArchive reads its directory lazily, and the first release let that InvalidDataException escape.</summary>
    [Fact]
    public void Zip_whose_end_record_miscounts_its_entries_is_a_zip_error()
    {
        var file = HostileFiles.ViewPth(size: [4], stride: [1]);
        var end = file.AsSpan().LastIndexOf([(byte)0x50, (byte)0x4b, (byte)0x05, (byte)0x06]);
        file[end + 8]++; // entries on this disk
        file[end + 10]++; // entries in total

        var error = Assert.Throws<CheckpointFormatException>(() => PthReader.Read(new MemoryStream(file), "miscounted.pth"));

        Assert.Equal("zip", error.Check);
        Assert.Contains("the zip directory is unreadable", error.Message);
    }

    [Fact]
    public void Copies_made_by_set_are_charged_to_the_object_limit()
    {
        var (error, allocated) = Refused(() => SafeUnpickler.Load(HostileFiles.SetCopies(), "sets.pkl"));

        Assert.Equal(BudgetMeter.Check, error.Check);
        Assert.Contains("MaxObjects", error.Message);
        Assert.True(allocated < 128 * Mebibyte, $"allocated {allocated} bytes");
    }

    [Fact]
    public void Copies_made_by_codecs_encode_are_charged_to_the_materialized_bytes()
    {
        var (error, allocated) = Refused(() => SafeUnpickler.Load(HostileFiles.EncodeCopies(), "encode.pkl"));

        Assert.Equal(BudgetMeter.Check, error.Check);
        Assert.Contains("_codecs.encode needs 262144 bytes", error.Message);
        Assert.True(allocated < 160 * Mebibyte, $"allocated {allocated} bytes");
    }

    [Fact]
    public void Memo_entries_beyond_the_limit_are_refused()
    {
        // Protocol 0: a list, then 20 × (INT i, PUT i, APPEND).
        var program = "(lp0\n" + string.Concat(Enumerable.Range(1, 20).Select(i => $"I{i}\np{i}\na")) + ".";
        var pickle = System.Text.Encoding.ASCII.GetBytes(program);

        var error = Assert.Throws<CheckpointFormatException>(() => SafeUnpickler.Load(pickle, "memo.pkl", ReadBudget.Default with { MaxMemoEntries = 10 }));

        Assert.Equal(BudgetMeter.Check, error.Check);
        Assert.Contains("MaxMemoEntries = 10", error.Message);
    }

    [Fact]
    public void A_read_longer_than_the_time_limit_is_refused()
    {
        var error = Assert.Throws<CheckpointFormatException>(() => SafeUnpickler.Load(HostileFiles.SetCopies(items: 5_000, copies: 1), "slow.pkl", ReadBudget.Default with { MaxTime = TimeSpan.Zero }));

        Assert.Equal(BudgetMeter.Check, error.Check);
        Assert.Contains("MaxTime", error.Message);
    }

    [Fact]
    public void A_budget_with_a_zero_compression_ratio_is_refused_up_front()
    {
        var budget = ReadBudget.Default with { MaxCompressionRatio = 0 };

        var error = Assert.Throws<ArgumentOutOfRangeException>(() => PthReader.Read(new MemoryStream(HostileFiles.ViewPth(size: [4], stride: [1])), "ok.pth", budget));

        Assert.Equal(nameof(ReadBudget.MaxCompressionRatio), error.ParamName);
    }

    [Fact]
    public void The_materialized_limit_saturates_instead_of_overflowing()
    {
        Assert.Equal(long.MaxValue, ReadBudget.Default.MaterializedBytesFor(long.MaxValue / 2));
        Assert.Equal((64L << 20) + 400, ReadBudget.Default.MaterializedBytesFor(100));
    }

    /// <summary>The exception <paramref name="read"/> throws and the bytes this thread allocated until then.</summary>
    private static (CheckpointFormatException Error, long Allocated) Refused(Func<object?> read)
    {
        var before = GC.GetAllocatedBytesForCurrentThread();
        var error = Assert.Throws<CheckpointFormatException>(() => read());
        return (error, GC.GetAllocatedBytesForCurrentThread() - before);
    }
}
