using PluggableShim.Abstractions;
using PluggableShim.Plugins.Fake.Internal.Faults;

namespace PluggableShim.Plugins.Fake.Tests.Faults;

public sealed class InjectedErrorTests
{
    [Theory]
    [InlineData("NotFound", typeof(NotFoundException))]
    [InlineData("AlreadyExists", typeof(AlreadyExistsException))]
    [InlineData("FailedPrecondition", typeof(FailedPreconditionException))]
    [InlineData("InvalidArgument", typeof(InvalidArgumentException))]
    [InlineData("Unimplemented", typeof(UnimplementedException))]
    [InlineData("Unknown", typeof(InjectedFaultException))]
    public void Each_code_becomes_the_exception_the_host_maps_to_it(string name, Type expected)
    {
        FaultCode code = Enum.Parse<FaultCode>(name);
        Exception ex = new InjectedError(code, "m", "a").ToException("start");

        Assert.IsType(expected, ex);
        Assert.False(code == FaultCode.Unknown && ex is ShimException, "Unknown must not be a ShimException");
    }

    [Fact]
    public void The_given_message_is_the_message()
    {
        Exception ex = new InjectedError(FaultCode.NotFound, "no such thing", "a").ToException("create");

        Assert.Equal("no such thing", ex.Message);
    }

    [Fact]
    public void Without_a_message_the_operation_and_the_annotation_are_named()
    {
        Exception ex = new InjectedError(FaultCode.FailedPrecondition, null, "io.pluggableshim.fake.start-error").ToException("start");

        Assert.Equal("start failed: fault injected by annotation io.pluggableshim.fake.start-error", ex.Message);
    }
}
