using System.Globalization;
using System.Reflection;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Checkpointing.Core;

/// <summary>
/// A TorchSharp optimizer's state in PyTorch's layout: <c>param_groups</c> (hyper-parameters and
/// the indices of their parameters) and <c>state</c> (per-parameter buffers keyed by index).
/// TorchSharp exposes both as public fields of its option and state classes, so every optimizer
/// (SGD, Adam, AdamW, RMSprop, ...) is handled by reading and writing those fields.
/// </summary>
public sealed class OptimizerCheckpointable(optim.Optimizer optimizer) : ICheckpointable
{
    private OptimizerHelper Helper => optimizer as OptimizerHelper
        ?? throw new NotSupportedException($"Optimizer {optimizer.GetType().Name} does not expose its state (TorchSharp OptimizerHelper expected).");

    /// <summary>The optimizer's parameters in the order of its state's indices.</summary>
    public IReadOnlyList<Parameter> Parameters => optimizer.ParamGroups.Cast<ParamGroup>().SelectMany(pg => pg.Parameters).ToList();

    /// <summary>
    /// The optimizer's type name, <c>state</c> (each parameter's buffers and counters, keyed "0", "1", … by parameter index) and
    /// <c>param_groups</c> (<c>lr</c>, <c>initial_lr</c>, the other numeric and boolean options, and <c>params</c>, the group's indices).
    /// </summary>
    /// <exception cref="NotSupportedException">the optimizer does not expose its state (it is no TorchSharp <c>OptimizerHelper</c>)</exception>
    public OrderedDictionary<string, object?> StateDict()
    {
        var sd = Helper.state_dict();
        var groups = new List<object?>();
        var state = new OrderedDictionary<string, object?>(StringComparer.Ordinal);
        for (var g = 0; g < sd.Options.Count; g++)
        {
            var group = new OrderedDictionary<string, object?>(StringComparer.Ordinal)
            {
                ["lr"] = sd.Options[g].LearningRate,
                ["initial_lr"] = sd.Options[g].InitialLearningRate,
            };
            foreach (var field in ValueFields(sd.Options[g].GetType())) group[field.Name] = field.GetValue(sd.Options[g]);
            group["params"] = sd.StateIndexRef[g].Select(i => (object?)(long)i).ToList();
            groups.Add(group);
        }
        for (var i = 0; i < sd.State.Count; i++)
        {
            var entry = new OrderedDictionary<string, object?>(StringComparer.Ordinal);
            foreach (var field in StateFields(sd.State[i].GetType())) entry[field.Name] = field.GetValue(sd.State[i]);
            state[i.ToString(CultureInfo.InvariantCulture)] = entry;
        }
        return new OrderedDictionary<string, object?>(StringComparer.Ordinal)
        {
            ["type"] = optimizer.GetType().Name,
            ["state"] = state,
            ["param_groups"] = groups,
        };
    }

    /// <summary>
    /// Restores every group's options and every parameter's state. A saved buffer is copied into the optimizer's existing
    /// buffer of the same shape, or else becomes a new one with the parameter's dtype and device.
    /// </summary>
    /// <param name="stored">What <see cref="StateDict"/> saved, from an optimizer of the same type over the same parameters.</param>
    /// <exception cref="InvalidDataException">the state is another optimizer type's, or its groups, parameters or buffer shapes do not match this optimizer's</exception>
    /// <exception cref="NotSupportedException">the optimizer does not expose its state (it is no TorchSharp <c>OptimizerHelper</c>)</exception>
    public void LoadStateDict(IReadOnlyDictionary<string, object?> stored)
    {
        var type = stored.GetValueOrDefault("type") as string;
        if (type != optimizer.GetType().Name)
            throw new InvalidDataException($"Checkpoint holds {type ?? "unknown"} optimizer state, but the optimizer is {optimizer.GetType().Name}.");
        var groups = stored.GetValueOrDefault("param_groups") as IList<object?> ?? throw new InvalidDataException("Optimizer state lacks 'param_groups'.");
        var states = stored.GetValueOrDefault("state") as IReadOnlyDictionary<string, object?> ?? throw new InvalidDataException("Optimizer state lacks 'state'.");
        var sd = Helper.state_dict();
        if (groups.Count != sd.Options.Count)
            throw new InvalidDataException($"Checkpoint has {groups.Count} parameter groups, the optimizer has {sd.Options.Count}.");

        var parameters = Parameters;
        for (var g = 0; g < groups.Count; g++)
        {
            var group = groups[g] as IReadOnlyDictionary<string, object?> ?? throw new InvalidDataException($"param_groups[{g}] is not a dictionary.");
            var indices = (group.GetValueOrDefault("params") as IList<object?> ?? []).Select(Convert.ToInt32).ToList();
            if (!indices.SequenceEqual(sd.StateIndexRef[g]))
                throw new InvalidDataException($"param_groups[{g}] holds {indices.Count} parameters, the optimizer's group has {sd.StateIndexRef[g].Count}.");
            var options = sd.Options[g];
            options.LearningRate = Convert.ToDouble(group["lr"], CultureInfo.InvariantCulture);
            options.InitialLearningRate = Convert.ToDouble(group["initial_lr"], CultureInfo.InvariantCulture);
            foreach (var field in ValueFields(options.GetType()))
            {
                if (group.TryGetValue(field.Name, out var value)) field.SetValue(options, ConvertTo(value, field.FieldType));
            }
        }
        if (states.Count != sd.State.Count)
            throw new InvalidDataException($"Checkpoint has state for {states.Count} parameters, the optimizer has {sd.State.Count}.");
        for (var i = 0; i < sd.State.Count; i++)
        {
            var entry = states.GetValueOrDefault(i.ToString(CultureInfo.InvariantCulture)) as IReadOnlyDictionary<string, object?>
                ?? throw new InvalidDataException($"Optimizer state for parameter {i} is missing.");
            var target = sd.State[i];
            var parameter = parameters[i];
            foreach (var field in StateFields(target.GetType()))
            {
                if (!entry.TryGetValue(field.Name, out var value)) continue;
                if (field.FieldType == typeof(Tensor))
                {
                    var current = field.GetValue(target) as Tensor;
                    field.SetValue(target, PlaceLike(value as Tensor, current, parameter, $"state[{i}].{field.Name}"));
                }
                else
                {
                    field.SetValue(target, ConvertTo(value, field.FieldType));
                }
            }
        }
    }

    /// <summary>Copies into the existing buffer when there is one; otherwise a fresh tensor on the parameter's device.</summary>
    private static Tensor? PlaceLike(Tensor? loaded, Tensor? current, Parameter parameter, string what)
    {
        if (loaded is null) return null;
        if (current is not null && current.shape.SequenceEqual(loaded.shape))
        {
            using (no_grad()) current.copy_(loaded);
            return current;
        }
        if (!loaded.shape.SequenceEqual(parameter.shape))
            throw new InvalidDataException($"Optimizer {what} has shape [{string.Join(", ", loaded.shape)}], its parameter [{string.Join(", ", parameter.shape)}].");
        return loaded.to(parameter.dtype, parameter.device).detach();
    }

    private static object? ConvertTo(object? value, Type type)
    {
        var target = Nullable.GetUnderlyingType(type) ?? type;
        return value is null ? null : Convert.ChangeType(value, target, CultureInfo.InvariantCulture);
    }

    private static IEnumerable<FieldInfo> ValueFields(Type type) =>
        type.GetFields(BindingFlags.Public | BindingFlags.Instance).Where(f => IsValueType(f.FieldType)).OrderBy(f => f.Name, StringComparer.Ordinal);

    private static IEnumerable<FieldInfo> StateFields(Type type) =>
        type.GetFields(BindingFlags.Public | BindingFlags.Instance).Where(f => f.FieldType == typeof(Tensor) || IsValueType(f.FieldType)).OrderBy(f => f.Name, StringComparer.Ordinal);

    private static bool IsValueType(Type type) =>
        (Nullable.GetUnderlyingType(type) ?? type) is var t && (t == typeof(double) || t == typeof(float) || t == typeof(long) || t == typeof(int) || t == typeof(bool));
}
