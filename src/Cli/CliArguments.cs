using System.Globalization;

namespace Checkpointing.Cli;

/// <summary>Thrown for a command line the user must fix; the message is shown with the usage.</summary>
public sealed class UsageException(string message) : Exception(message);

/// <summary>
/// "--name value" options, "--flag" switches and positionals. Every option a command reads is
/// declared by reading it; <see cref="ThrowOnUnknown"/> then refuses anything left over.
/// </summary>
public sealed class CliArguments
{
    private readonly Dictionary<string, string?> _options = new(StringComparer.Ordinal);
    private readonly HashSet<string> _read = new(StringComparer.Ordinal);
    private readonly List<string> _positionals = [];

    public CliArguments(IEnumerable<string> args, IReadOnlySet<string> flags)
    {
        using var e = args.GetEnumerator();
        while (e.MoveNext())
        {
            var arg = e.Current;
            if (!arg.StartsWith("--", StringComparison.Ordinal) || arg == "--")
            {
                _positionals.Add(arg);
                continue;
            }
            var name = arg[2..];
            string? value = null;
            var eq = name.IndexOf('=');
            if (eq >= 0) (name, value) = (name[..eq], name[(eq + 1)..]);
            else if (!flags.Contains(name))
            {
                if (!e.MoveNext()) throw new UsageException($"--{name} needs a value");
                value = e.Current;
            }
            if (!_options.TryAdd(name, value)) throw new UsageException($"--{name} given twice");
        }
    }

    public IReadOnlyList<string> Positionals => _positionals;

    public bool Flag(string name)
    {
        _read.Add(name);
        return _options.ContainsKey(name);
    }

    public string? String(string name)
    {
        _read.Add(name);
        return _options.GetValueOrDefault(name);
    }

    public long Long(string name, long fallback, long min = long.MinValue)
    {
        var text = String(name);
        if (text is null) return fallback;
        if (!long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) || value < min)
            throw new UsageException($"--{name} must be an integer >= {min}, got '{text}'");
        return value;
    }

    public long? OptionalLong(string name, long min = long.MinValue) => String(name) is null ? null : Long(name, 0, min);

    public double? OptionalFraction(string name)
    {
        var text = String(name);
        if (text is null) return null;
        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) || value is < 0 or > 1 || double.IsNaN(value))
            throw new UsageException($"--{name} must be a fraction between 0 and 1, got '{text}'");
        return value;
    }

    public string Positional(int index, string what) =>
        index < _positionals.Count ? _positionals[index] : throw new UsageException($"missing {what}");

    public void ThrowOnUnknown(int maxPositionals)
    {
        var unknown = _options.Keys.FirstOrDefault(k => !_read.Contains(k));
        if (unknown is not null) throw new UsageException($"unknown option --{unknown}");
        if (_positionals.Count > maxPositionals) throw new UsageException($"unexpected argument '{_positionals[maxPositionals]}'");
    }
}
