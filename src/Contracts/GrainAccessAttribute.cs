using System.Reflection;

namespace Checkpointing.Contracts;

/// <summary>
/// Classifies a grain interface (all its members) or one member. A member without a
/// classification, on itself or its interface, is callable by nobody: access is default-deny.
/// </summary>
[AttributeUsage(AttributeTargets.Interface | AttributeTargets.Method, Inherited = false)]
public sealed class GrainAccessAttribute(CallerAccess access) : Attribute
{
    /// <summary>Who may call the interface's members, or this member.</summary>
    public CallerAccess Access { get; } = access;

    /// <summary>The member's classification, or null when it has none (deny).</summary>
    /// <remarks>Cached per method: the silo's call filters ask on every call, and attribute lookup is reflection.</remarks>
    public static CallerAccess? Of(MethodInfo interfaceMethod) => Cache.GetOrAdd(interfaceMethod, static method =>
        (method.GetCustomAttribute<GrainAccessAttribute>() ?? method.DeclaringType?.GetCustomAttribute<GrainAccessAttribute>())?.Access);

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<MethodInfo, CallerAccess?> Cache = new();
}
