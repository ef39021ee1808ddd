using System.Reflection;

namespace Checkpointing.Contracts;

/// <summary>Who may call a grain interface member; the silo refuses every other caller.</summary>
public enum CallerAccess
{
    /// <summary>A client holding a credential for the target's tenant (or the operator's).</summary>
    Tenant,

    /// <summary>A client holding the operator's credential.</summary>
    Operator,

    /// <summary>Grains of the cluster only; never a client, whatever credential it holds.</summary>
    Internal,
}

/// <summary>
/// Classifies a grain interface (all its members) or one member. A member without a
/// classification, on itself or its interface, is callable by nobody: access is default-deny.
/// </summary>
[AttributeUsage(AttributeTargets.Interface | AttributeTargets.Method, Inherited = false)]
public sealed class GrainAccessAttribute(CallerAccess access) : Attribute
{
    public CallerAccess Access { get; } = access;

    /// <summary>The member's classification, or null when it has none (deny).</summary>
    /// <remarks>Cached per method: the silo's call filters ask on every call, and attribute lookup is reflection.</remarks>
    public static CallerAccess? Of(MethodInfo interfaceMethod) => Cache.GetOrAdd(interfaceMethod, static method =>
        (method.GetCustomAttribute<GrainAccessAttribute>() ?? method.DeclaringType?.GetCustomAttribute<GrainAccessAttribute>())?.Access);

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<MethodInfo, CallerAccess?> Cache = new();
}
