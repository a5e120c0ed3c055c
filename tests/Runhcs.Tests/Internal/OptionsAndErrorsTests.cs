using PluggableShim.Abstractions;
using PluggableShim.Contracts.Runhcs;
using PluggableShim.Plugins.Runhcs.Internal;
using Google.Protobuf;

namespace PluggableShim.Runhcs.Tests.Internal;

public sealed class OptionsAndErrorsTests
{
    private static readonly Options Sample = new()
    {
        Debug = true,
        DebugType = Options.Types.DebugType.File,
        RegistryRoot = "pluggable-test",
        SandboxIsolation = Options.Types.SandboxIsolation.Hypervisor,
        SandboxImage = "ignored",
        VmMemorySizeInMb = 1024,
        LogLevel = "warning",
        DefaultContainerAnnotations = { ["k1"] = "v1", ["k2"] = "v2" },
    };

    [Theory]
    [InlineData("containerd.runhcs.v1.Options")]
    [InlineData("type.googleapis.com/containerd.runhcs.v1.Options")]
    public void Runhcs_options_decode_from_bare_and_prefixed_type_urls(string typeUrl)
    {
        RunhcsOptions options = RunhcsOptions.From(new TypedPayload(typeUrl, Sample.ToByteArray()));

        Assert.True(options.Debug);
        Assert.Equal(DebugType.File, options.DebugType);
        Assert.Equal("pluggable-test", options.RegistryRoot);
        Assert.True(options.HyperVIsolation);
        Assert.Equal("warning", options.LogLevel);
        Assert.Equal(new Dictionary<string, string> { ["k1"] = "v1", ["k2"] = "v2" }, options.DefaultContainerAnnotations);
    }

    [Fact]
    public void Other_option_types_and_none_give_the_defaults()
    {
        Assert.Same(RunhcsOptions.Default, RunhcsOptions.From(null));
        Assert.Same(RunhcsOptions.Default, RunhcsOptions.From(new TypedPayload("runtimeoptions.v1.Options", new byte[] { 0x12, 0x01, 0x41 })));
    }

    [Fact]
    public void Options_that_do_not_decode_are_an_invalid_argument()
    {
        var ex = Assert.Throws<InvalidArgumentException>(() =>
            RunhcsOptions.From(new TypedPayload(RunhcsOptions.TypeName, new byte[] { 0x1A, 0x10, 0x41 })));

        Assert.Contains("containerd.runhcs.v1.Options", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("kill", "container is stopped", typeof(NotFoundException))]
    [InlineData("exec", "container is stopped", typeof(FailedPreconditionException))]
    [InlineData("state", "ID 'c1' was not found", typeof(NotFoundException))]
    [InlineData("create", "ID 'c1' already exists", typeof(AlreadyExistsException))]
    [InlineData("pause", "container c1 is not running (it is created)", typeof(FailedPreconditionException))]
    [InlineData("create", "invalid spec: process.args is empty", typeof(InvalidArgumentException))]
    [InlineData("start", "hcsshim::System::Start 0x8037011b: something Windows says", typeof(RunhcsException))]
    public void Runhcs_messages_become_the_matching_status_and_keep_runhcss_words(string command, string message, Type expected)
    {
        Exception ex = RunhcsErrors.From(command, 1, message);

        Assert.IsType(expected, ex);
        Assert.Equal($"runhcs {command}: {message}", ex.Message);
    }

    [Fact]
    public void Settings_parse_and_reject_unknown_keys()
    {
        RunhcsSettings settings = RunhcsSettings.Parse("""{"runhcsPath":"/x/runhcs","owner":"me","startTimeoutSeconds":2, /* c */ }""");
        Assert.Equal("/x/runhcs", settings.RunhcsPath);
        Assert.Equal("me", settings.Owner);
        Assert.Equal(TimeSpan.FromSeconds(2), settings.StartTimeout);

        var ex = Assert.Throws<InvalidArgumentException>(() => RunhcsSettings.Parse("""{"runhcs":"x"}"""));
        Assert.Contains("unknown setting \"runhcs\"", ex.Message, StringComparison.Ordinal);
        Assert.Throws<InvalidArgumentException>(() => RunhcsSettings.Parse("""{"commandTimeoutSeconds":-1}"""));
    }

    [Fact]
    public void A_configured_runhcs_that_does_not_exist_is_a_failed_precondition_naming_the_setting()
    {
        var settings = new RunhcsSettings { RunhcsPath = "/nonexistent/runhcs.exe" };

        var ex = Assert.Throws<FailedPreconditionException>(settings.ResolveBinary);

        Assert.Contains("plugins.runhcs.runhcsPath", ex.Message, StringComparison.Ordinal);
    }
}
