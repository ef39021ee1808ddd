using System.Reflection;
using System.Security.Cryptography;
using System.Text;
using Checkpointing.Abstractions.Runs;
using Microsoft.Extensions.Options;

namespace Checkpointing.Grains;

/// <summary>
/// Proves a call to an internal member (<see cref="CallerAccess.Internal"/>) comes from a grain of
/// this cluster: an HMAC over the target grain and member, keyed by a key derived from the
/// operator's signing key, which silos hold and clients never do. A proof is good for that one
/// member of that one grain only.
/// </summary>
public sealed class InternalCallProof(IOptions<TenancyOptions> options)
{
    public const string RequestContextKey = "ckpt-internal-call";

    private readonly byte[] _key = HMACSHA256.HashData(options.Value.KeyBytes(), "ckpt internal grain calls v1"u8);

    public string For(GrainId target, MethodInfo interfaceMethod) =>
        Convert.ToBase64String(HMACSHA256.HashData(_key, Encoding.UTF8.GetBytes($"{target}\n{interfaceMethod.DeclaringType!.FullName}.{interfaceMethod.Name}")));

    public bool Verify(string? presented, GrainId target, MethodInfo interfaceMethod) =>
        presented is not null && CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(For(target, interfaceMethod)), Encoding.ASCII.GetBytes(presented));
}

/// <summary>Attaches an <see cref="InternalCallProof"/> to the internal calls run grains make (their tenant's accounting).</summary>
public sealed class InternalCallSigner(InternalCallProof proof) : IOutgoingGrainCallFilter
{
    public async Task Invoke(IOutgoingGrainCallContext context)
    {
        if (context.SourceContext?.GrainInstance is not TrainingRunGrain || GrainAccessAttribute.Of(context.InterfaceMethod) != CallerAccess.Internal)
        {
            await context.Invoke();
            return;
        }
        RequestContext.Set(InternalCallProof.RequestContextKey, proof.For(context.TargetId, context.InterfaceMethod));
        try { await context.Invoke(); }
        finally { RequestContext.Remove(InternalCallProof.RequestContextKey); }
    }
}
