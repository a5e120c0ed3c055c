namespace PluggableShim.Abstractions;

/// <summary>
/// A failure with a meaning for containerd. The host turns each subclass into one
/// status code; any other exception becomes Unknown.
/// </summary>
public abstract class ShimException : Exception
{
    /// <summary>Creates the exception.</summary>
    protected ShimException(string message, Exception? innerException = null)
        : base(message, innerException)
    {
    }
}

/// <summary>The named container, process or resource does not exist (NotFound).</summary>
public sealed class NotFoundException(string message) : ShimException(message);

/// <summary>It exists already (AlreadyExists).</summary>
public sealed class AlreadyExistsException(string message) : ShimException(message);

/// <summary>The object is not in a state that allows the operation (FailedPrecondition).</summary>
public sealed class FailedPreconditionException(string message) : ShimException(message);

/// <summary>The request is malformed (InvalidArgument).</summary>
public sealed class InvalidArgumentException(string message, Exception? innerException = null)
    : ShimException(message, innerException);

/// <summary>The plugin does not implement the operation (Unimplemented).</summary>
public sealed class UnimplementedException(string operation)
    : ShimException($"{operation} is not implemented by this runtime plugin");
