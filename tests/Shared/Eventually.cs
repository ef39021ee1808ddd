namespace Checkpointing.TestSupport;

/// <summary>For effects that happen after an acknowledgement (background deletions, off-path accounting): poll until they show or a deadline passes.</summary>
public static class Eventually
{
    public static async Task Equal<T>(T expected, Func<T> actual, TimeSpan? within = null) =>
        await Equal(expected, () => Task.FromResult(actual()), within);

    public static async Task Equal<T>(T expected, Func<Task<T>> actual, TimeSpan? within = null)
    {
        var deadline = DateTime.UtcNow + (within ?? TimeSpan.FromSeconds(30));
        while (true)
        {
            var value = await actual();
            if (EqualityComparer<T>.Default.Equals(expected, value) || expected is System.Collections.IEnumerable && value is System.Collections.IEnumerable && SameSequence(expected, value)) return;
            if (DateTime.UtcNow > deadline)
            {
                Assert.Equal(expected, value);
                return;
            }
            await Task.Delay(100);
        }
    }

    private static bool SameSequence<T>(T expected, T actual) =>
        ((System.Collections.IEnumerable)expected!).Cast<object?>().SequenceEqual(((System.Collections.IEnumerable)actual!).Cast<object?>());
}
