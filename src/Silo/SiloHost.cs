using System.Net;
using Azure.Data.Tables;
using Checkpointing.Abstractions;
using Checkpointing.Grains;
using Checkpointing.Storage;
using Microsoft.Extensions.Options;
using Orleans.Configuration;
using Orleans.Dashboard;
using Orleans.Storage;

namespace Checkpointing.Silo;

/// <summary>
/// Builds the silo process: Orleans, the checkpoint store, tenant checks, and on its HTTP port the dashboard (/), liveness (/healthz)
/// and readiness (/readyz, <see cref="HealthEndpoints"/>), grain-state write counts (/stats), metrics in Prometheus format (/metrics, <see cref="SiloMetrics"/>),
/// the control-plane API (/api/v1, <see cref="RunApi"/>), its OpenAPI document (/openapi/v1.json) and, for the
/// operator, the Orleans Dashboard (/orleans).
/// </summary>
public static class SiloHost
{
    public static WebApplication Build(string[] args)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory, WebRootPath = "wwwroot" });
        builder.Configuration.AddEnvironmentVariables("CKPT_").AddCommandLine(args);
        SiloConfiguration.Check(builder.Configuration);
        SiloLogging.Configure(builder);
        var silo = SiloConfiguration.Bind<SiloSettings>(builder.Configuration, SiloSettings.Section);
        var storage = SiloConfiguration.Bind<StorageSettings>(builder.Configuration, StorageSettings.Section);
        var http = SiloConfiguration.Bind<HttpLimits>(builder.Configuration, HttpLimits.Section);
        builder.WebHost.ConfigureKestrel(kestrel => http.ApplyTo(kestrel.Limits));
        builder.Services.AddRateLimiter(http.ApplyTo);
        builder.WebHost.UseUrls($"http://{silo.EffectiveHttpAddress}:{silo.HttpPort ?? silo.HealthPort}");
        var listenAddress = silo.Mode switch
        {
            "Cluster" => AdvertisedAddresses.Resolve(silo.AdvertisedAddress),
            "Kubernetes" => IPAddress.Any,
            _ => IPAddress.Loopback,
        };
        ListenPorts.EnsureFree(listenAddress, silo.SiloPort, "silo");
        ListenPorts.EnsureFree(listenAddress, silo.GatewayPort, "gateway");
        var account = StorageClients.Account(storage);
        builder.Services.AddSiloHealthChecks(storage, account);
        builder.Services.AddProblemDetails();
        builder.Services.AddOpenApi(options => options.AddDocumentTransformer<ApiDocumentTransformer>());
        builder.Services.AddSiloTelemetry(builder.Configuration);

        builder.Services.Configure<RunGrainOptions>(builder.Configuration.GetSection(RunGrainOptions.Section));
        // A silo's memory store holds no shard of any rank (ranks write elsewhere): there is nothing to check sizes against.
        if (storage.Checkpoints == "Memory") builder.Services.PostConfigure<RunGrainOptions>(o => o.ChecksStoredSizes = false);
        builder.Services.Configure<TenancyOptions>(builder.Configuration.GetSection(TenancyOptions.Section));
        var stateWrites = new GrainStateWrites();
        var storageRequests = new StorageRequestCounts(); // checkpoint store and grain state together: what commits cost the account

        builder.UseOrleans(orleans =>
        {
            orleans.Configure<ClusterOptions>(o =>
            {
                o.ClusterId = silo.ClusterId;
                o.ServiceId = silo.ServiceId;
            });
            switch (silo.Mode)
            {
                case "Dev":
                    orleans.UseLocalhostClustering(silo.SiloPort, silo.GatewayPort,
                        silo.PrimarySiloPort is { } primary ? new IPEndPoint(IPAddress.Loopback, primary) : null,
                        silo.ServiceId, silo.ClusterId);
                    break;
                case "Cluster":
                    orleans.ConfigureEndpoints(listenAddress, silo.SiloPort, silo.GatewayPort, listenOnAnyHostAddress: false);
                    UseTableMembership(orleans, storage, account);
                    break;
                case "Kubernetes":
                    // The pod's IP is advertised and every interface listened on (UseKubernetesHosting); the ports are ours.
                    orleans.Configure<EndpointOptions>(o => (o.SiloPort, o.GatewayPort) = (silo.SiloPort, silo.GatewayPort));
                    orleans.UseKubernetesHosting(hosting => hosting.Configure(KubernetesApi.Configure));
                    UseTableMembership(orleans, storage, account);
                    break;
                default:
                    throw new InvalidOperationException($"Silo:Mode must be Dev, Cluster or Kubernetes, not '{silo.Mode}'.");
            }
            foreach (var name in new[] { GrainStorage.Runs, GrainStorage.Tenants })
            {
                if (storage.GrainState == "Memory") orleans.AddMemoryGrainStorage(name, (OptionsBuilder<MemoryGrainStorageOptions> o) =>
                    o.Configure<IGrainStorageSerializer>((options, serializer) => options.GrainStorageSerializer = stateWrites.Counting(serializer)));
                else orleans.AddAzureBlobGrainStorage(name, o =>
                {
                    o.BlobServiceClient = StorageClients.Blobs(account, options =>
                    {
                        storageRequests.Attach(options);
                        stateWrites.CountPuts(options);
                    });
                    o.ContainerName = storage.GrainStateContainer;
                });
            }
            // Reminders live beside grain state: volatile with it, or in an Azure table of the same account.
            if (storage.GrainState == "Memory") orleans.UseInMemoryReminderService();
            else orleans.UseAzureTableReminderService(o =>
            {
                o.TableServiceClient = StorageClients.Tables(storage, account);
                o.TableName = storage.ReminderTable;
            });
            // The sweep reminder's period is bounded below by Reminders:MinimumReminderPeriod (Orleans' default 1 minute).
            orleans.Services.Configure<ReminderOptions>(builder.Configuration.GetSection("Reminders"));
            orleans.AddCheckpointing(CreateCheckpointStore(storage, account, storageRequests));
            orleans.AddDashboard(); // served at /orleans, to the operator only
            // Failure-detection timings (ProbeTimeout, NumMissedProbesLimit, ...) can be tuned under "Membership".
            orleans.Services.Configure<ClusterMembershipOptions>(builder.Configuration.GetSection("Membership"));
        });

        var app = builder.Build();
        app.UseStatusCodePages(); // bodies of bare error statuses (a malformed JSON body: 400) are problem+json too
        app.UseRateLimiter();
        // The operator console (wwwroot): static files that call /api/v1 with the token kept in the browser session.
        var console = new StaticFileOptions
        {
            OnPrepareResponse = file => file.Context.Response.Headers.ContentSecurityPolicy = "default-src 'self'; frame-ancestors 'none'",
        };
        app.UseDefaultFiles();
        app.UseStaticFiles(console);
        // The console's deep links are its own routes: each serves the page, which reads the route from the address.
        app.MapFallbackToFile("/tenants/{tenant}", "index.html", console);
        app.MapFallbackToFile("/runs/{tenant}/{run}", "index.html", console);
        app.MapOpenApi();
        app.MapPrometheusScrapingEndpoint().ExcludeFromDescription(); // GET /metrics
        RunApi.Map(app);
        app.MapOrleansDashboard(routePrefix: "/orleans").RequireOperator().ExcludeFromDescription();
        app.MapSiloHealthChecks(silo);
        // jit_methods lets `ckpt-bench commits` keep warming up until tiered compilation has settled.
        app.MapGet("/stats", () => Results.Json(new
        {
            state_writes = stateWrites.Writes,
            state_bytes_written = stateWrites.Bytes,
            storage_requests = new
            {
                put = storageRequests.Puts,
                put_bytes = storageRequests.PutBytes,
                get = storageRequests.Gets,
                head = storageRequests.Heads,
                delete = storageRequests.Deletes,
                other = storageRequests.Others,
            },
            jit_methods = System.Runtime.JitInfo.GetCompiledMethodCount(),
        })).ExcludeFromDescription();
        return app;
    }

    private static void UseTableMembership(ISiloBuilder orleans, StorageSettings storage, StorageAccount account) =>
        orleans.UseAzureStorageClustering(o =>
        {
            o.TableServiceClient = StorageClients.Tables(storage, account);
            o.TableName = storage.MembershipTable;
        });

    private static ICheckpointStore CreateCheckpointStore(StorageSettings storage, StorageAccount account, StorageRequestCounts requests) => storage.Checkpoints switch
    {
        "Folder" => new FileSystemStore(storage.CheckpointFolder),
        "AzureBlob" => new AzureBlobStore(StorageClients.Blobs(account, options => requests.Attach(options)).GetBlobContainerClient(storage.CheckpointContainer)),
        "Memory" => new MemoryStore(),
        var other => throw new InvalidOperationException($"Storage:Checkpoints must be AzureBlob, Folder or Memory, not '{other}'."),
    };
}
