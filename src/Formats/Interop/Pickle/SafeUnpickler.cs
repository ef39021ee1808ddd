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
    /// <param name="pickle">the whole pickle stream</param>
    /// <param name="source">the name errors report</param>
    /// <param name="budget">the limits (<see cref="ReadBudget.Default"/> when null); the file's size is the pickle's length</param>
    /// <exception cref="CheckpointFormatException">The pickle is damaged, uses a global that is not allowed, or exceeds the budget.</exception>
    public static object? Load(byte[] pickle, string source, ReadBudget? budget = null)
    {
        var meter = new BudgetMeter(budget ?? ReadBudget.Default, source, pickle.LongLength);
        return PickleValues.ToStateValue(PickleMachine.Run(pickle, Globals, meter), meter);
    }

    /// <summary>
    /// Reads the file at <paramref name="path"/> whole and loads it as <see cref="Load"/> does; errors report its file name.
    /// </summary>
    /// <param name="path">the <c>.pkl</c> file</param>
    /// <param name="budget">the limits (<see cref="ReadBudget.Default"/> when null); the file's size is its length</param>
    public static object? LoadFile(string path, ReadBudget? budget = null) => Load(File.ReadAllBytes(path), Path.GetFileName(path), budget);
}
