using Microsoft.AspNetCore.OpenApi;
using Microsoft.OpenApi;

namespace Checkpointing.Silo;

/// <summary>
/// What the generated OpenAPI document of <c>/api/v1</c> cannot know from the routes: the title, the license, the
/// server, the bearer security scheme every route requires (a tenant token), the descriptions of the tags, and the schema of
/// each operation's answer (<see cref="ApiSchemas"/>) in place of the generic JSON object the routes declare.
/// </summary>
internal sealed class ApiDocumentTransformer : IOpenApiDocumentTransformer
{
    public const string RunsTag = "runs";
    public const string TenantsTag = "tenants";
    private const string Bearer = "bearer";

    public Task TransformAsync(OpenApiDocument document, OpenApiDocumentTransformerContext context, CancellationToken cancellationToken)
    {
        document.Info = new OpenApiInfo
        {
            Title = "Checkpointing control plane",
            Version = "v1",
            Description = "Runs, their checkpoint catalogs and policies, and tenants, as `ckpt run …` shows them (docs/operating.md#http-api).",
            License = new OpenApiLicense { Name = "MIT", Identifier = "MIT" },
        };
        document.Servers = [new OpenApiServer { Url = "http://checkpointing-silo:8080", Description = "A silo's HTTP port (Silo:HttpPort), here as the Service of deploy/kubernetes names it." }];
        document.Components ??= new OpenApiComponents();
        document.Components.SecuritySchemes = new Dictionary<string, IOpenApiSecurityScheme>
        {
            [Bearer] = new OpenApiSecurityScheme
            {
                Type = SecuritySchemeType.Http,
                Scheme = "bearer",
                Description = "A tenant token (`ckpt token --tenant T`), or the operator's (`--tenant '*'`).",
            },
        };
        document.Security = [new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference(Bearer, document)] = [] }];
        foreach (var (name, schema) in ApiSchemas.All(document)) document.Components.Schemas![name] = schema;
        document.Components.Schemas!.Remove(nameof(System.Text.Json.Nodes.JsonObject));
        foreach (var operation in (document.Paths ?? []).Values.SelectMany(path => path.Operations?.Values.AsEnumerable() ?? []))
        {
            if (operation.OperationId is not { } id || !ApiSchemas.AnswerOf.TryGetValue(id, out var answer)) continue;
            var success = operation.Responses!.First(r => r.Key.StartsWith('2'));
            success.Value.Content!["application/json"].Schema = new OpenApiSchemaReference(answer, document);
        }
        document.Tags = new HashSet<OpenApiTag>
        {
            new() { Name = RunsTag, Description = "A training run: its policy, catalog, pending checkpoints, history and attempts." },
            new() { Name = TenantsTag, Description = "A tenant's runs, retained bytes and limits." },
        };
        return Task.CompletedTask;
    }
}
