using System.Text;
using Checkpointing.Formats.Interop;
using Checkpointing.Formats.Interop.Pickle;

namespace Checkpointing.Formats.Tests.Interop;

/// <summary>The pickle machine on hand-written programs: what Python would build, and what it must refuse.</summary>
public sealed class SafeUnpicklerTests
{
    [Fact]
    public void Protocol_0_text_pickle_reads_like_python()
    {
        // pickle.dumps({'a': [1, 2.5, 'x', None, True, 'é'], 2: (b'\x00',)}, protocol=0)
        var pickle = Encoding.Latin1.GetBytes("(dp0\nVa\np1\n(lp2\nI1\naF2.5\naVx\np3\naNaI01\naV\xe9\np4\nasI2\n(c_codecs\nencode\np5\n(V\\u0000\np6\nVlatin1\np7\ntp8\nRp9\ntp10\ns.");

        var root = Assert.IsType<OrderedDictionary<object, object?>>(SafeUnpickler.Load(pickle, "p0.pkl"));

        Assert.Equal(["a", 2L], root.Keys);
        Assert.Equal(new List<object?> { 1L, 2.5, "x", null, true, "\u00e9" }, root["a"]);
        var bytes = Assert.IsType<byte[]>(Assert.Single(Assert.IsType<List<object?>>(root[2L])));
        Assert.Equal([0], bytes);
    }

    [Fact]
    public void Ordered_dict_keeps_python_key_order_and_becomes_a_python_ordered_dict()
    {
        var pickle = new PickleWriter();
        pickle.Global("collections", "OrderedDict");
        pickle.EmptyTuple();
        pickle.Reduce();
        pickle.Mark();
        foreach (var key in new[] { "z", "a", "m" })
        {
            pickle.String(key);
            pickle.Long(key[0]);
        }
        pickle.SetItemsFromMark();

        var dict = Assert.IsType<PythonOrderedDict>(SafeUnpickler.Load(pickle.Finish(), "ordered.pkl"));

        Assert.Equal(["z", "a", "m"], dict.Keys);
    }

    [Theory]
    [InlineData("cposix\nsystem\n(S'touch /tmp/never'\ntR.", "posix.system")] // GLOBAL + REDUCE
    [InlineData("(S'touch /tmp/never'\nios\nsystem\n.", "os.system")] // INST
    [InlineData("c__builtin__\neval\n.", "__builtin__.eval")] // Python 2 spelling, not even called
    [InlineData("csubprocess\nPopen\n.", "subprocess.Popen")]
    public void Any_global_off_the_allow_list_is_refused_by_name(string program, string global)
    {
        var error = Assert.Throws<CheckpointFormatException>(() => SafeUnpickler.Load(Encoding.Latin1.GetBytes(program), "evil.pkl"));

        Assert.Equal("pickle global", error.Check);
        Assert.Equal("evil.pkl", error.Source);
        Assert.Contains($"'{global}'", error.Message);
    }

    [Fact]
    public void Stack_global_is_checked_like_global()
    {
        // protocol 4: SHORT_BINUNICODE 'builtins', SHORT_BINUNICODE 'exec', STACK_GLOBAL
        byte[] program = [0x80, 4, 0x8c, 8, .. "builtins"u8, 0x8c, 4, .. "exec"u8, 0x93, (byte)'.'];

        var error = Assert.Throws<CheckpointFormatException>(() => SafeUnpickler.Load(program, "evil.pkl"));

        Assert.Contains("'builtins.exec'", error.Message);
    }

    [Theory]
    [InlineData(new byte[] { 0x80, 2, (byte)'X', 10, 0, 0, 0, (byte)'a' }, "truncated")] // string longer than the file
    [InlineData(new byte[] { 0x80, 2, (byte)'h', 3, (byte)'.' }, "memo entry 3")]
    [InlineData(new byte[] { 0x80, 2, (byte)'a', (byte)'.' }, "stack underflow")]
    [InlineData(new byte[] { 0x80, 2, 0xff, (byte)'.' }, "unknown opcode 0xff")]
    [InlineData(new byte[] { 0x80, 9, (byte)'N', (byte)'.' }, "protocol 9")]
    [InlineData(new byte[] { 0x80, 2, (byte)'N', (byte)'P', (byte)'x', (byte)'\n', (byte)'.' }, "persistent id")]
    public void Malformed_programs_fail_the_pickle_check(byte[] program, string detail)
    {
        var error = Assert.Throws<CheckpointFormatException>(() => SafeUnpickler.Load(program, "bad.pkl"));

        Assert.Equal("pickle", error.Check);
        Assert.Contains(detail, error.Message);
    }

    [Fact]
    public void Python_numbers_that_compare_equal_are_one_key()
    {
        // {1: 'int', 1.0: 'float', True: 'bool'} is {1: 'bool'} in Python
        var pickle = new PickleWriter();
        pickle.EmptyDict();
        pickle.Mark();
        pickle.Long(1);
        pickle.String("int");
        pickle.Double(1.0);
        pickle.String("float");
        pickle.Bool(true);
        pickle.String("bool");
        pickle.SetItemsFromMark();

        var dict = Assert.IsType<OrderedDictionary<object, object?>>(SafeUnpickler.Load(pickle.Finish(), "keys.pkl"));

        Assert.Equal(1L, Assert.Single(dict).Key);
        Assert.Equal("bool", dict[1L]);
    }
}
