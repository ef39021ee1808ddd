using System.Text.Json.Nodes;
using Checkpointing.Contracts;
using Microsoft.OpenApi;

namespace Checkpointing.Silo;

/// <summary>
/// The JSON Schemas of the API's answers: the shapes <see cref="RunJson"/> builds, written out once here because the answers are
/// JSON objects rather than typed records (the CLI prints the same objects). Every property is listed and required, nullable ones
/// say so, and no other property is allowed; a test holds real answers and the documented examples to them.
/// </summary>
internal static class ApiSchemas
{
    /// <summary>The schema of each operation's success answer, by operationId.</summary>
    public static readonly IReadOnlyDictionary<string, string> AnswerOf = new Dictionary<string, string>
    {
        ["ListTenants"] = "TenantList",
        ["ListTenantRuns"] = "RunPage",
        ["GetRun"] = "Run",
        ["CreateRun"] = "Run",
        ["SetRunPolicy"] = "Run",
        ["DeleteRun"] = "Deleted",
        ["RequestCheckpointNow"] = "CheckpointRequested",
        ["RecoverRunCatalog"] = "CatalogRecovery",
        ["GetRunHistory"] = "History",
        ["GetRunProgress"] = "Progress",
    };

    /// <summary>Every schema by name; references between them resolve in <paramref name="document"/>.</summary>
    public static Dictionary<string, IOpenApiSchema> All(OpenApiDocument document)
    {
        IOpenApiSchema Ref(string name) => new OpenApiSchemaReference(name, document);
        return new Dictionary<string, IOpenApiSchema>
        {
            ["Policy"] = Object("A periodic policy in fvcore's names.",
                ("period", Integer("Save every `period` iterations.")), ("max_iter", Integer("The last iteration (model_final is saved there); null: none.", nullable: true)),
                ("max_to_keep", Integer("Keep only this many periodic checkpoints; null: all.", nullable: true)), ("file_prefix", Text("Checkpoint name prefix.")),
                ("memory_period", Integer("Take an in-memory checkpoint every `memory_period` iterations (docs/memory-tier.md); null: no memory tier.", nullable: true))),
            ["Checkpoint"] = Object("A committed checkpoint in the run's catalog.",
                ("name", Text("Its name.")), ("iteration", Integer("The iteration it saved, if known.", nullable: true)), ("bytes", Integer("Bytes it wrote.")),
                ("world_size", Integer("Ranks that saved it.")), ("committed_utc", Time("When it committed.")), ("last", Boolean("Whether a resume loads it."))),
            ["Pending"] = Object("A checkpoint begun and not committed yet.",
                ("name", Text("Its name.")), ("epoch", Integer("The attempt that began it.")), ("world_size", Integer("Ranks that must report.")),
                ("ranks_reported", Integer("How many ranks' reports the grain holds (a count).")), ("ranks_missing", Array(Integer("A rank."), "Ranks whose report the grain does not hold, lowest first.")),
                ("started_utc", Time("When the first rank began it."))),
            ["MissingRank"] = Object("A rank the run no longer hears from.", ("rank", Integer("The rank.")), ("since_utc", Time("Its last heartbeat (or the attempt's first, for a rank never heard)."))),
            ["Health"] = Object("The run's health, computed from its ranks' heartbeats, its pending checkpoints and its catalog.",
                ("state", State()), ("detail", Text("Why, in one sentence.")), ("missing_ranks", Array(Ref("MissingRank"), "Ranks silent past the limit.")),
                ("world_size", Integer("Ranks of the current attempt, from their heartbeats.")), ("last_heartbeat_utc", Time("The newest heartbeat.", nullable: true)),
                ("iteration", Integer("The job's iteration (its slowest live rank's).", nullable: true)), ("loss", Number("Rank 0's last loss.", nullable: true)),
                ("step_seconds", Number("The live ranks' median step time.", nullable: true)), ("progress_utc", Time("When the iteration last advanced.", nullable: true))),
            ["Run"] = Object("A run, as `ckpt run show --json` prints it.",
                ("run", Text("tenant/run.")), ("policy", Ref("Policy")), ("epoch", Integer("The current attempt.")), ("last", Text("The checkpoint a resume loads.", nullable: true)),
                ("retained_bytes", Integer("What the run's quota charge counts.")), ("checkpoints", Array(Ref("Checkpoint"), "The catalog, oldest first.")),
                ("pending", Array(Ref("Pending"), "Checkpoints begun and not committed.")), ("checkpoint_request", Text("The reason of an outstanding checkpoint-now request.", nullable: true)),
                ("hosted_by", Text("The silo whose activation answered.")), ("health", Ref("Health")),
                ("memory_checkpoint", Object("The newest committed memory-tier checkpoint (docs/memory-tier.md); null: none.", nullable: true,
                    ("name", Text("Its name, memory_ and the iteration.")), ("iteration", Integer("The iteration it holds.")), ("epoch", Integer("The attempt that took it.")),
                    ("world_size", Integer("Ranks that took it.")), ("committed_utc", Time("When its last rank reported.")),
                    ("held_bytes", Integer("Bytes held in memory, replicas counted.")), ("usable", Boolean("False once a resume found a rank's snapshot on none of its holders.")),
                    ("ranks", Array(Object("Where one rank's snapshot lives.", ("rank", Integer("The rank.")), ("bytes", Integer("Its snapshot's bytes.")),
                        ("holders", Array(Object("A holder.", ("endpoint", Text("Its URL.")), ("host", Text("Its host."))), "Its own holder first, then its replicas'."))),
                        "Every rank."))))),
            ["RunSummary"] = Object("One run of a tenant's list.",
                ("run", Text("The run's name.")), ("state", State()), ("last", Text("The checkpoint a resume loads.", nullable: true)),
                ("last_committed_utc", Time("When the newest checkpoint committed.", nullable: true)), ("retained_bytes", Integer("What the run retains.")),
                ("commits_last_hour", Integer("Checkpoints committed in the last hour.")), ("iteration", Integer("The job's iteration.", nullable: true)),
                ("last_heartbeat_utc", Time("The newest heartbeat.", nullable: true))),
            ["RunPage"] = Object("A page of a tenant's runs with its totals and limits (`ckpt run ls T --json`).",
                ("tenant", Text("The tenant.")), ("max_runs", Integer("Its run limit; null: unlimited.", nullable: true)),
                ("max_retained_bytes", Integer("Its byte limit; null: unlimited.", nullable: true)), ("retained_bytes", Integer("What all its runs retain.")),
                ("total_runs", Integer("How many runs it has.")), ("offset", Integer("The page's first run's index.")), ("runs", Array(Ref("RunSummary"), "The page, in name order."))),
            ["TenantList"] = Object("Every tenant (operator).", ("tenants", Array(Object("A tenant.",
                ("tenant", Text("Its name.")), ("runs", Integer("How many runs it has.")), ("retained_bytes", Integer("What its runs retain.")),
                ("max_runs", Integer("Its run limit; null: unlimited.", nullable: true)), ("max_retained_bytes", Integer("Its byte limit; null: unlimited.", nullable: true))), "In name order."))),
            ["History"] = Object("The run's checkpoint history (`ckpt history --json`).", ("run", Text("tenant/run.")), ("history", Array(Object("A save or a load.",
                ("kind", Enumeration("save, load, or fallback (a resume that could not use the memory tier).", "save", "load", "fallback")), ("name", Text("The checkpoint.")), ("at_utc", Time("When it committed or was recorded.")),
                ("epoch", Integer("The attempt.")), ("bytes", Integer("Bytes written or read.")), ("seconds", Number("How long it took.")),
                ("mb_per_s", Number("10^6 bytes per second.", nullable: true)),
                ("rank_seconds", Object("The ranks' Begin-to-report seconds.", nullable: true,
                    ("ranks", Integer("Ranks measured.")), ("min", Number("Fastest.")), ("median", Number("Median.")), ("max", Number("Slowest.")), ("slowest_rank", Integer("Which rank was slowest.")))),
                ("stall_seconds", Number("The longest training stall a rank reported.", nullable: true)), ("rank", Integer("A load: the rank that loaded.", nullable: true)),
                ("detail", Text("A fallback: why the memory tier was not used.", nullable: true))), "Oldest first."))),
            ["Progress"] = Object("The run's recent progress from heartbeats.", ("run", Text("tenant/run.")), ("progress", Array(Object("One point (at most one per second).",
                ("at_utc", Time("When.")), ("iteration", Integer("The job's iteration.")), ("loss", Number("Rank 0's loss.", nullable: true)),
                ("step_seconds", Number("Rank 0's step time.", nullable: true))), "Oldest first."))),
            ["CatalogRecovery"] = Object("What a catalog recovery adopted and refused.", ("run", Text("tenant/run.")),
                ("adopted", Array(Text("A checkpoint."), "Checkpoints that verified and were adopted.")),
                ("refused", Array(Object("A refused checkpoint.", ("name", Text("Its name.")), ("reason", Text("Why."))), "Checkpoints that did not verify.")),
                ("last_checkpoint", Text("The checkpoint the last tag names now.", nullable: true))),
            ["Deleted"] = Object("A deleted run.", ("deleted", Text("tenant/run."))),
            ["CheckpointRequested"] = Object("An accepted checkpoint-now request.", ("run", Text("tenant/run.")), ("requested", Text("The reason recorded."))),
        };
    }

    private static OpenApiSchema Object(string description, params (string Name, IOpenApiSchema Schema)[] properties) =>
        Object(description, nullable: false, properties);

    private static OpenApiSchema Object(string description, bool nullable, params (string Name, IOpenApiSchema Schema)[] properties) => new()
    {
        Type = Maybe(JsonSchemaType.Object, nullable),
        Description = description,
        Properties = properties.ToDictionary(p => p.Name, p => p.Schema),
        Required = properties.Select(p => p.Name).ToHashSet(),
        AdditionalPropertiesAllowed = false,
    };

    private static OpenApiSchema Array(IOpenApiSchema items, string description) => new() { Type = JsonSchemaType.Array, Items = items, Description = description };
    private static OpenApiSchema Text(string description, bool nullable = false) => new() { Type = Maybe(JsonSchemaType.String, nullable), Description = description };
    private static OpenApiSchema Time(string description, bool nullable = false) => new() { Type = Maybe(JsonSchemaType.String, nullable), Format = "date-time", Description = description };
    private static OpenApiSchema Integer(string description, bool nullable = false) => new() { Type = Maybe(JsonSchemaType.Integer, nullable), Format = "int64", Description = description };
    private static OpenApiSchema Number(string description, bool nullable = false) => new() { Type = Maybe(JsonSchemaType.Number, nullable), Format = "double", Description = description };
    private static OpenApiSchema Boolean(string description) => new() { Type = JsonSchemaType.Boolean, Description = description };

    private static OpenApiSchema Enumeration(string description, params string[] values) =>
        new() { Type = JsonSchemaType.String, Description = description, Enum = values.Select(v => (JsonNode)JsonValue.Create(v)!).ToList() };

    private static OpenApiSchema State() =>
        Enumeration("The run's health state (docs/operating.md#run-health).", Enum.GetValues<RunHealth>().Select(RunJson.Name).ToArray());

    private static JsonSchemaType Maybe(JsonSchemaType type, bool nullable) => nullable ? type | JsonSchemaType.Null : type;
}
