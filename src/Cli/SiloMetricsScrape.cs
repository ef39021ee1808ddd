using System.Globalization;
using System.Text.Json.Nodes;

namespace Checkpointing.Cli;

/// <summary>Reads a silo's <c>/metrics</c> (Prometheus text format) and sums every <c>ckpt_…_total</c> counter over its labels.</summary>
public static class SiloMetricsScrape
{
    /// <summary>
    /// Scrapes <c>http://127.0.0.1:<paramref name="httpPort"/>/metrics</c> and returns each <c>ckpt_…_total</c>
    /// counter summed over its labels, by name in ordinal order.
    /// </summary>
    /// <exception cref="HttpRequestException">The connection failed, or the silo answered with an error status.</exception>
    /// <exception cref="TaskCanceledException">No answer within the 10 s timeout.</exception>
    public static async Task<JsonObject> CountersAsync(int httpPort)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        var text = await http.GetStringAsync(new Uri($"http://127.0.0.1:{httpPort}/metrics"));
        var sums = new SortedDictionary<string, double>(StringComparer.Ordinal);
        foreach (var line in text.Split('\n'))
        {
            if (!line.StartsWith("ckpt_", StringComparison.Ordinal)) continue;
            var nameEnd = line.IndexOfAny(['{', ' ']);
            var name = line[..nameEnd];
            if (!name.EndsWith("_total", StringComparison.Ordinal)) continue;
            // "name{labels} value [timestamp]": the value follows the labels.
            var fields = line[(line.IndexOf('}', StringComparison.Ordinal) is var close and >= 0 ? close + 1 : nameEnd)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length > 0 && double.TryParse(fields[0], NumberStyles.Float, CultureInfo.InvariantCulture, out var value))
                sums[name] = sums.GetValueOrDefault(name) + value;
        }
        return new JsonObject(sums.Select(s => KeyValuePair.Create(s.Key, (JsonNode?)s.Value)));
    }
}
