using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Checkpointing.Core.Tests;

/// <summary>A minimal HTTP/1.1 server on 127.0.0.1 that serves the files of one folder (GET only, one request per connection).</summary>
public sealed class LoopbackFileServer : IDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly string _root;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _serving;
    private int _requests;

    public LoopbackFileServer(string root)
    {
        _root = root;
        _listener.Start();
        _serving = Task.Run(ServeAsync);
    }

    public string BaseUrl => $"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}/";
    public int Requests => Volatile.Read(ref _requests);

    private async Task ServeAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(_stop.Token);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            using (client) await RespondAsync(client.GetStream());
        }
    }

    private async Task RespondAsync(NetworkStream stream)
    {
        Interlocked.Increment(ref _requests);
        using var reader = new StreamReader(stream, Encoding.ASCII, leaveOpen: true);
        var requestLine = await reader.ReadLineAsync() ?? "";
        while (!string.IsNullOrEmpty(await reader.ReadLineAsync())) { } // headers
        var target = requestLine.Split(' ') is [_, var t, _] ? Uri.UnescapeDataString(t.TrimStart('/')) : "";
        var file = Path.Combine(_root, target);
        var found = target.Length > 0 && !target.Contains("..", StringComparison.Ordinal) && File.Exists(file);
        var body = found ? await File.ReadAllBytesAsync(file) : "not found"u8.ToArray();
        var head = $"HTTP/1.1 {(found ? "200 OK" : "404 Not Found")}\r\nContent-Length: {body.Length}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n";
        await stream.WriteAsync(Encoding.ASCII.GetBytes(head));
        await stream.WriteAsync(body);
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Stop();
        _serving.Wait(TimeSpan.FromSeconds(5));
        _stop.Dispose();
    }
}
