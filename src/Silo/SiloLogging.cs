namespace Checkpointing.Silo;

/// <summary>
/// The silo's console log: one line per entry with a UTC timestamp (the default), or with
/// <c>Logging:Format=json</c> one JSON object per entry, exception and scopes included, for a log
/// collector. Levels stay under <c>Logging:LogLevel</c> as usual.
/// </summary>
public static class SiloLogging
{
    public const string FormatKey = "Logging:Format";

    public static void Configure(WebApplicationBuilder builder)
    {
        var format = builder.Configuration[FormatKey] ?? "simple";
        builder.Logging.ClearProviders();
        switch (format)
        {
            case "simple":
                builder.Logging.AddSimpleConsole(console =>
                {
                    console.SingleLine = true;
                    console.UseUtcTimestamp = true;
                    console.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ ";
                });
                break;
            case "json":
                builder.Logging.AddJsonConsole(console =>
                {
                    console.UseUtcTimestamp = true;
                    console.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ";
                    console.IncludeScopes = true;
                });
                break;
            default:
                throw new InvalidSiloConfigurationException($"{FormatKey} must be simple or json, not '{format}'.");
        }
    }
}
