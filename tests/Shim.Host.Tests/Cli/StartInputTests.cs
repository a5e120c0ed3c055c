using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using PluggableShim.Contracts.Bootstrap;
using PluggableShim.Host.Cli;
using RuntimeOptions = PluggableShim.Contracts.RuntimeOptions.Options;

namespace PluggableShim.Host.Tests.Cli;

/// <summary>
/// stdin of start, byte for byte: empty, a bare Any (containerd 1.6 to 2.2), BootstrapParams
/// (2.3+), and the cases where one parses as the other.
/// </summary>
public sealed class StartInputTests
{
    private const string Id = "c1";
    private const string Ns = "default";

    private static Any RuntimeOptionsAny(string configPath) => new()
    {
        TypeUrl = "runtimeoptions.v1.Options",
        Value = new RuntimeOptions { ConfigPath = configPath }.ToByteString(),
    };

    [Fact]
    public void Empty_stdin_carries_nothing()
    {
        StartInput input = StartInput.Decode([], Id, Ns);

        Assert.Equal(StartInputForm.Empty, input.Form);
        Assert.Null(input.RuntimeOptions);
        Assert.Null(input.Bootstrap);
        Assert.Null(input.StartOptions);
        Assert.Empty(input.RuntimeOptionsBytes);
    }

    [Fact]
    public void A_bare_Any_is_the_runtime_options()
    {
        byte[] bytes = RuntimeOptionsAny("/etc/psh/a.json").ToByteArray();

        StartInput input = StartInput.Decode(bytes, Id, Ns);

        Assert.Equal(StartInputForm.Any, input.Form);
        Assert.Equal("runtimeoptions.v1.Options", input.RuntimeOptions!.TypeUrl);
        Assert.Equal("/etc/psh/a.json", RuntimeOptions.Parser.ParseFrom(input.RuntimeOptions.Value).ConfigPath);
        Assert.Equal(bytes, input.RuntimeOptionsBytes);
        Assert.Null(input.TtrpcAddress);
        Assert.Null(input.GrpcAddress);
    }

    [Fact]
    public void BootstrapParams_carry_the_options_extension_the_addresses_and_the_log_level()
    {
        var bootstrap = new BootstrapParams
        {
            InstanceId = Id,
            Namespace = Ns,
            LogLevel = -4,
            ContainerdVersion = "2.3.0",
            ContainerdTtrpcAddress = "/run/containerd/containerd.sock.ttrpc",
            ContainerdGrpcAddress = "/run/containerd/containerd.sock",
            ContainerdBinary = "/usr/bin/containerd",
            SocketDir = "/run/containerd/s",
        };
        // containerd's own extensions come under containerd.io/; the runtime options do not.
        bootstrap.Extensions.Add(new BootstrapExtension { Value = new Any { TypeUrl = "containerd.io/cri.v1.PodSandboxConfig", Value = ByteString.CopyFromUtf8("x") } });
        bootstrap.Extensions.Add(new BootstrapExtension { Value = RuntimeOptionsAny("/etc/psh/b.json") });

        StartInput input = StartInput.Decode(bootstrap.ToByteArray(), Id, Ns);

        Assert.Equal(StartInputForm.Bootstrap, input.Form);
        Assert.Equal("/etc/psh/b.json", RuntimeOptions.Parser.ParseFrom(input.RuntimeOptions!.Value).ConfigPath);
        Assert.Equal("runtimeoptions.v1.Options", input.StartOptions!.TypeUrl);
        Assert.Equal(RuntimeOptionsAny("/etc/psh/b.json").Value.ToByteArray(), input.StartOptions.Value.ToArray());
        Assert.Equal("/run/containerd/containerd.sock.ttrpc", input.TtrpcAddress);
        Assert.Equal("/run/containerd/containerd.sock", input.GrpcAddress);
        Assert.True(input.Debug);
    }

    [Fact]
    public void BootstrapParams_without_extensions_carry_no_options_and_info_is_not_debug()
    {
        var bootstrap = new BootstrapParams { InstanceId = Id, Namespace = Ns, ContainerdVersion = "2.3.0", LogLevel = 0 };

        StartInput input = StartInput.Decode(bootstrap.ToByteArray(), Id, Ns);

        Assert.Equal(StartInputForm.Bootstrap, input.Form);
        Assert.Null(input.RuntimeOptions);
        Assert.False(input.Debug);
    }

    [Fact]
    public void BootstrapParams_with_only_the_identity_are_told_from_an_Any_by_matching_the_command_line()
    {
        // Fields 1 and 2 only: exactly what an Any looks like on the wire.
        byte[] bytes = new BootstrapParams { InstanceId = Id, Namespace = Ns }.ToByteArray();
        Assert.Equal(bytes, new Any { TypeUrl = Id, Value = ByteString.CopyFromUtf8(Ns) }.ToByteArray());

        Assert.Equal(StartInputForm.Bootstrap, StartInput.Decode(bytes, Id, Ns).Form);
        // The same bytes for another shim are an Any whose type URL happens to be "c1".
        StartInput other = StartInput.Decode(bytes, "c2", Ns);
        Assert.Equal(StartInputForm.Any, other.Form);
        Assert.Equal(Id, other.RuntimeOptions!.TypeUrl);
    }

    [Fact]
    public void An_Any_whose_value_is_not_text_is_still_an_Any()
    {
        // Parsed as BootstrapParams the value would be a namespace that is not UTF-8.
        var any = new Any { TypeUrl = "containerd.runhcs.v1.Options", Value = ByteString.CopyFrom(0xff, 0xfe, 0x08, 0x01) };

        StartInput input = StartInput.Decode(any.ToByteArray(), Id, Ns);

        Assert.Equal(StartInputForm.Any, input.Form);
        Assert.Equal(any, input.RuntimeOptions);
    }

    [Fact]
    public void BootstrapParams_for_another_shim_are_refused()
    {
        byte[] bytes = new BootstrapParams { InstanceId = "c2", Namespace = Ns, ContainerdVersion = "2.3.0" }.ToByteArray();

        InvalidDataException error = Assert.Throws<InvalidDataException>(() => StartInput.Decode(bytes, Id, Ns));
        Assert.Contains("default/c2", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Bytes_that_are_no_protobuf_are_refused()
    {
        Assert.Throws<InvalidDataException>(() => StartInput.Decode([0x0a, 0x7f, 0x41], Id, Ns)); // truncated field 1
        Assert.Throws<InvalidDataException>(() => StartInput.Decode("{\"json\":1}"u8, Id, Ns));
    }
}
