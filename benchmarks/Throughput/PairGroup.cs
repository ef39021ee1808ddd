namespace Checkpointing.Benchmarks.Throughput;

/// <summary>One of our operations and the references it is compared with, each a timed run returning seconds.</summary>
/// <param name="Rows">Row name, reference name, reference run: each row is "ours against this reference".</param>
public sealed record PairGroup(string What, Func<Task<double>> Ours, IReadOnlyList<(string Row, string Reference, Func<Task<double>> Run)> Rows);
