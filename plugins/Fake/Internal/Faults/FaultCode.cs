using PluggableShim.Abstractions;

namespace PluggableShim.Plugins.Fake.Internal.Faults;

/// <summary>
/// The status codes a fault can answer with: those the host maps from a <see cref="ShimException"/>
/// type, plus Unknown (any other exception). Other gRPC codes (Internal, Unavailable, …) have no
/// exception type in Shim.Abstractions, so a fault cannot produce them yet.
/// </summary>
internal enum FaultCode
{
    Unknown = 2,
    InvalidArgument = 3,
    NotFound = 5,
    AlreadyExists = 6,
    FailedPrecondition = 9,
    Unimplemented = 12,
}

/// <summary>A failure an annotation asks for: the code, the message, and the annotation that asked.</summary>
internal sealed record InjectedError(FaultCode Code, string? Message, string Annotation)
{
    /// <summary>The exception the host turns into <see cref="Code"/>; <paramref name="operation"/> names the failing call.</summary>
    public Exception ToException(string operation)
    {
        string message = Message ?? $"{operation} failed: fault injected by annotation {Annotation}";
        return Code switch
        {
            FaultCode.NotFound => new NotFoundException(message),
            FaultCode.AlreadyExists => new AlreadyExistsException(message),
            FaultCode.FailedPrecondition => new FailedPreconditionException(message),
            FaultCode.InvalidArgument => new InvalidArgumentException(message),
            // UnimplementedException only takes an operation name and words the message itself
            // ("X is not implemented by this runtime plugin"); the injected text stands in for X.
            FaultCode.Unimplemented => new UnimplementedException(
                Message ?? $"{operation} (fault injected by annotation {Annotation})"),
            _ => new InjectedFaultException(message),
        };
    }
}

/// <summary>
/// An injected failure with no meaning for containerd: not a <see cref="ShimException"/>, so the host
/// answers Unknown, as it does for any unexpected error.
/// </summary>
internal sealed class InjectedFaultException(string message) : Exception(message);
