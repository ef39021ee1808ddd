using Checkpointing.Formats.Interop.Numpy;

namespace Checkpointing.Formats.Interop.Pickle;

/// <summary>
/// Loads a standalone pickle (<c>.pkl</c>) of plain Python data and numpy arrays without running
/// code: only collection, codec and numpy-array globals are allowed, anything else is refused
/// with a <see cref="CheckpointFormatException"/> (check "pickle global") naming the global.
/// </summary>
public static class SafeUnpickler
{
    private static readonly PickleGlobals Globals = new PickleGlobals(PickleGlobals.PythonData).With(NumpyGlobals.All);

    /// <summary>The value tree of <paramref name="pickle"/>: the value model of <see cref="StateTree"/>; numpy arrays become <see cref="HostTensor"/>s.</summary>
    /// <param name="budget">the limits (<see cref="ReadBudget.Default"/> when null); the file's size is the pickle's length</param>
    public static object? Load(byte[] pickle, string source, ReadBudget? budget = null)
    {
        var meter = new BudgetMeter(budget ?? ReadBudget.Default, source, pickle.LongLength);
        return PickleValues.ToStateValue(PickleMachine.Run(pickle, Globals, meter), meter);
    }

    public static object? LoadFile(string path, ReadBudget? budget = null) => Load(File.ReadAllBytes(path), Path.GetFileName(path), budget);
}
