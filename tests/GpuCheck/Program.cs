using System.Reflection;
using TorchSharp;
using Xunit;

// Runs every [Fact]/[Theory] (skippable ones included) of the test classes traited Category=Gpu in
// Checkpointing.Core.Tests, one at a time, and exits 1 if any failed or skipped: on a GPU
// machine a skip means the CUDA runtime did not load, which is exactly what this check is for.
try
{
    torch.InitializeDeviceType(DeviceType.CUDA); // before any tensor: the CPU backend must not load first
}
catch (InvalidOperationException e)
{
    Console.Error.WriteLine($"gpu-check: the CUDA backend did not load: {e.Message.ReplaceLineEndings(" ").Trim()}");
    return 1;
}
Console.WriteLine($"cuda: {torch.cuda.is_available()}, devices: {torch.cuda.device_count()}");

var testAssembly = typeof(Checkpointing.Core.Tests.GpuTests).Assembly;
var failures = 0;
var ran = 0;
foreach (var (type, method, arguments) in GpuTestCases(testAssembly))
{
    var name = $"{type.Name}.{method.Name}({string.Join(", ", arguments)})";
    ran++;
    try
    {
        await RunAsync(type, method, arguments);
        Console.WriteLine($"PASS {name}");
    }
    catch (Exception e)
    {
        failures++;
        var cause = e is TargetInvocationException { InnerException: { } inner } ? inner : e;
        var verdict = cause.GetType().Name == "SkipException" ? "SKIPPED (counts as a failure on a GPU machine)" : "FAIL";
        Console.WriteLine($"{verdict} {name}: {cause.GetType().Name}: {cause.Message}");
    }
}
Console.WriteLine($"gpu tests: {ran - failures} passed, {failures} failed or skipped");
return failures == 0 && ran > 0 ? 0 : 1;

static IEnumerable<(Type Type, MethodInfo Method, object?[] Arguments)> GpuTestCases(Assembly assembly)
{
    foreach (var type in assembly.GetTypes().Where(IsGpuClass))
    {
        foreach (var method in type.GetMethods().Where(m => m.GetCustomAttributes<FactAttribute>().Any()))
        {
            var rows = method.GetCustomAttributes<InlineDataAttribute>().SelectMany(d => d.GetData(method)).ToList();
            if (rows.Count == 0) rows.Add([]);
            foreach (var row in rows) yield return (type, method, row);
        }
    }
}

static bool IsGpuClass(Type type) =>
    type.GetCustomAttributesData().Any(a => a.AttributeType == typeof(TraitAttribute)
        && a.ConstructorArguments is [{ Value: "Category" }, { Value: "Gpu" }]);

static async Task RunAsync(Type type, MethodInfo method, object?[] arguments)
{
    var instance = Activator.CreateInstance(type)!;
    try
    {
        if (method.Invoke(instance, arguments) is Task task) await task;
    }
    finally
    {
        (instance as IDisposable)?.Dispose();
    }
}
