using Checkpointing.Contracts;

namespace Checkpointing.Grains;

/// <summary>Attaches an <see cref="InternalCallProof"/> to the internal calls run grains make (their tenant's accounting).</summary>
public sealed class InternalCallSigner(InternalCallProof proof) : IOutgoingGrainCallFilter
{
    /// <summary>Attaches a proof to a call from a run or tenant grain to an internal member, for that call only; passes every other call on unchanged.</summary>
    public async Task Invoke(IOutgoingGrainCallContext context)
    {
        if (context.SourceContext?.GrainInstance is not (TrainingRunGrain or TenantGrain) || GrainAccessAttribute.Of(context.InterfaceMethod) != CallerAccess.Internal)
        {
            await context.Invoke();
            return;
        }
        RequestContext.Set(InternalCallProof.RequestContextKey, proof.For(context.TargetId, context.InterfaceMethod));
        try { await context.Invoke(); }
        finally { RequestContext.Remove(InternalCallProof.RequestContextKey); }
    }
}
