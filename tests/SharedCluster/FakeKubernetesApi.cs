using System.Collections.Concurrent;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Checkpointing.Processes;

namespace Checkpointing.TestSupport;

/// <summary>
/// The part of a Kubernetes API server that Orleans' Kubernetes hosting uses, for one namespace: read, patch (merge of
/// labels), list and watch pods, delete. Pods are added by the test; a kubeconfig file points a silo at it (KUBECONFIG).
/// </summary>
public sealed class FakeKubernetesApi : IAsyncDisposable
{
    private readonly HttpListener _listener;
    private readonly Task _serving;
    private readonly CancellationTokenSource _stopping = new();
    private readonly ConcurrentDictionary<string, ConcurrentDictionary<string, string>> _pods = new();

    private FakeKubernetesApi(string @namespace, HttpListener listener, string folder, int port)
    {
        Namespace = @namespace;
        _listener = listener;
        KubeconfigPath = Path.Combine(folder, "kubeconfig");
        File.WriteAllText(KubeconfigPath, $"""
            apiVersion: v1
            kind: Config
            clusters:
            - name: fake
              cluster:
                server: http://127.0.0.1:{port}
            users:
            - name: fake
              user:
                token: fake
            contexts:
            - name: fake
              context:
                cluster: fake
                user: fake
                namespace: {@namespace}
            current-context: fake
            """);
        _serving = Task.Run(ServeAsync);
    }

    public string Namespace { get; }
    public string KubeconfigPath { get; }

    public static FakeKubernetesApi Start(string @namespace)
    {
        var folder = Directory.CreateTempSubdirectory("fake-k8s-").FullName;
        var port = Azurite.FreePort();
        var listener = new HttpListener();
        listener.Prefixes.Add($"http://127.0.0.1:{port}/");
        listener.Start();
        return new FakeKubernetesApi(@namespace, listener, folder, port);
    }

    public void AddPod(string name) => _pods[name] = new ConcurrentDictionary<string, string>();

    /// <summary>The labels pod <paramref name="name"/> has now.</summary>
    public IReadOnlyDictionary<string, string> Labels(string name) => _pods[name];

    private async Task ServeAsync()
    {
        while (!_stopping.IsCancellationRequested)
        {
            HttpListenerContext context;
            try { context = await _listener.GetContextAsync(); }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException) { return; }
            _ = Task.Run(() => AnswerAsync(context));
        }
    }

    private async Task AnswerAsync(HttpListenerContext context)
    {
        var response = context.Response;
        try
        {
            var prefix = $"/api/v1/namespaces/{Namespace}/pods";
            var path = context.Request.Url!.AbsolutePath;
            if (!path.StartsWith(prefix, StringComparison.Ordinal)) { response.StatusCode = 404; return; }
            var name = path.Length > prefix.Length ? path[(prefix.Length + 1)..] : null;
            var method = context.Request.HttpMethod;
            if (name is null && method == "GET")
            {
                var selected = _pods.Where(p => Matches(p.Value, context.Request.QueryString["labelSelector"])).Select(p => Pod(p.Key)).ToList();
                if (context.Request.QueryString["watch"] is "true" or "1") { await WatchAsync(response, selected); return; }
                await WriteAsync(response, new JsonObject { ["apiVersion"] = "v1", ["kind"] = "PodList", ["metadata"] = new JsonObject { ["resourceVersion"] = "1" }, ["items"] = new JsonArray([.. selected]) });
                return;
            }
            if (name is null || !_pods.TryGetValue(name, out var labels)) { response.StatusCode = 404; return; }
            if (method == "PATCH")
            {
                using var reader = new StreamReader(context.Request.InputStream, Encoding.UTF8);
                var patch = JsonNode.Parse(await reader.ReadToEndAsync());
                foreach (var (key, value) in patch?["metadata"]?["labels"]?.AsObject() ?? []) labels[key] = value?.GetValue<string>() ?? "";
            }
            await WriteAsync(response, Pod(name));
        }
        catch (Exception) when (_stopping.IsCancellationRequested) { }
        finally
        {
            try { response.Close(); } catch (ObjectDisposedException) { }
        }
    }

    /// <summary>A watch: the selected pods as ADDED events, then the stream stays open until the API stops.</summary>
    private async Task WatchAsync(HttpListenerResponse response, List<JsonObject> pods)
    {
        response.ContentType = "application/json";
        response.SendChunked = true;
        foreach (var pod in pods)
        {
            var line = Encoding.UTF8.GetBytes(new JsonObject { ["type"] = "ADDED", ["object"] = pod }.ToJsonString() + "\n");
            await response.OutputStream.WriteAsync(line);
            await response.OutputStream.FlushAsync();
        }
        try { await Task.Delay(Timeout.Infinite, _stopping.Token); }
        catch (OperationCanceledException) { }
    }

    private static bool Matches(IReadOnlyDictionary<string, string> labels, string? selector) =>
        string.IsNullOrEmpty(selector) || selector.Split(',').All(term => term.Split('=', 2) is [var key, var value] && labels.TryGetValue(key, out var has) && has == value);

    private JsonObject Pod(string name) => new()
    {
        ["apiVersion"] = "v1",
        ["kind"] = "Pod",
        ["metadata"] = new JsonObject
        {
            ["name"] = name,
            ["namespace"] = Namespace,
            ["uid"] = name,
            ["resourceVersion"] = "1",
            ["labels"] = new JsonObject([.. _pods[name].Select(l => KeyValuePair.Create(l.Key, (JsonNode?)l.Value))]),
        },
        ["status"] = new JsonObject { ["phase"] = "Running", ["podIP"] = "127.0.0.1" },
    };

    private static async Task WriteAsync(HttpListenerResponse response, JsonObject body)
    {
        response.ContentType = "application/json";
        await response.OutputStream.WriteAsync(Encoding.UTF8.GetBytes(body.ToJsonString()));
    }

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync();
        _listener.Stop();
        _listener.Close();
        await _serving;
        Directory.Delete(Path.GetDirectoryName(KubeconfigPath)!, recursive: true);
    }
}
