using Checkpointing.Contracts;
using Checkpointing.TrainerAgent;
using CsCheck;

namespace Checkpointing.Grains.Tests;

/// <summary>
/// Any sequence of puts, completions and deletions on a holder, checked against a model: a snapshot is served only once
/// complete and then exactly as put; a rank never has more than two complete snapshots: the one completed last and the newest other;
/// the bytes held are exactly the bytes of what it keeps, and never pass the budget.
/// </summary>
public sealed class SnapshotHolderProperties
{
    private abstract record Op(int Rank, long Iteration);
    private sealed record Put(int Rank, long Iteration, string Name, int Length) : Op(Rank, Iteration);
    private sealed record Complete(int Rank, long Iteration) : Op(Rank, Iteration);
    private sealed record Delete(int Rank, long Iteration) : Op(Rank, Iteration);

    private static readonly Gen<Op> AnyOp = Gen.Frequency(
        (6, Gen.Select(Gen.Int[0, 1], Gen.Long[0, 5], Gen.Int[0, 2].Select(i => new[] { "manifest.json", "a.safetensors", "b.safetensors" }[i]), Gen.Int[0, 300],
            (rank, iteration, name, length) => (Op)new Put(rank, iteration, name, length))),
        (3, Gen.Select(Gen.Int[0, 1], Gen.Long[0, 5], (rank, iteration) => (Op)new Complete(rank, iteration))),
        (1, Gen.Select(Gen.Int[0, 1], Gen.Long[0, 5], (rank, iteration) => (Op)new Delete(rank, iteration))));

    [Fact]
    public void Holders_keep_exactly_what_the_rules_say_whatever_the_order_of_requests()
    {
        AnyOp.Array[1, 60].Sample(ops =>
        {
            const long budget = 2_000;
            var holder = new SnapshotHolder(budget);
            // The model: per (rank, iteration), its objects and whether it is complete.
            var model = new Dictionary<(int, long), (Dictionary<string, byte[]> Objects, bool Complete)>();
            foreach (var op in ops)
            {
                var key = new SnapshotKey(new RunId("t", "r"), op.Rank, 1, op.Iteration);
                switch (op)
                {
                    case Put put:
                        var bytes = Enumerable.Range(0, put.Length).Select(i => (byte)(i + put.Iteration)).ToArray();
                        if (!holder.TryReserve(bytes.Length)) break;
                        var problem = holder.Put(key, put.Name, new HeldObject([bytes], bytes.Length, 0), bytes.Length);
                        var held = model.TryGetValue((op.Rank, op.Iteration), out var existing) ? existing : (Objects: new Dictionary<string, byte[]>(), Complete: false);
                        Assert.Equal(held.Complete, problem is not null);
                        if (!held.Complete) held.Objects[put.Name] = bytes;
                        model[(op.Rank, op.Iteration)] = held;
                        break;
                    case Complete:
                        if (!model.TryGetValue((op.Rank, op.Iteration), out var snapshot)) { Assert.NotNull(holder.Complete(key, new Dictionary<string, long>())); break; }
                        Assert.Null(holder.Complete(key, snapshot.Objects.ToDictionary(o => o.Key, o => (long)o.Value.Length)));
                        model[(op.Rank, op.Iteration)] = (snapshot.Objects, true);
                        foreach (var older in model.Keys.Where(k => k.Item1 == op.Rank && k.Item2 < op.Iteration && !model[k].Complete).ToList()) model.Remove(older);
                        // The one just completed stays, with the newest other complete one.
                        foreach (var older in model.Where(m => m.Key.Item1 == op.Rank && m.Value.Complete && m.Key.Item2 != op.Iteration).OrderBy(m => m.Key.Item2)
                            .SkipLast(SnapshotHolder.CompleteKept - 1).ToList())
                            model.Remove(older.Key);
                        break;
                    case Delete:
                        Assert.Equal(model.Remove((op.Rank, op.Iteration)), holder.Delete(key));
                        break;
                }
                foreach (var ((rank, iteration), (objects, complete)) in model)
                {
                    var served = holder.Get(new SnapshotKey(new RunId("t", "r"), rank, 1, iteration));
                    Assert.Equal(complete, served is not null);
                    if (served is not null) Assert.All(objects, o => Assert.Equal(o.Value, served[o.Key].Chunks.SelectMany(c => c).ToArray()));
                }
                var stats = holder.Stats();
                Assert.Equal(model.Values.Sum(s => s.Objects.Values.Sum(o => (long)o.Length)), stats.BytesHeld);
                Assert.True(stats.BytesHeld <= budget);
                Assert.All(new[] { 0, 1 }, rank => Assert.True(model.Count(m => m.Key.Item1 == rank && m.Value.Complete) <= SnapshotHolder.CompleteKept));
            }
        });
    }
}
