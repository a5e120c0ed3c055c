using System.Text;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using PluggableShim.Host.Cli;

namespace PluggableShim.Host.Tests.Cli;

/// <summary>What start prints for each value of the config's startOutput, byte for byte.</summary>
public sealed class StartOutputTests
{
    private const string Ttrpc = "unix:///run/containerd/s/abc";
    private const string Grpc = "/run/containerd/s/abc.1234abcd.grpc";

    [Theory]
    [InlineData(null, Ttrpc)]
    [InlineData("", Ttrpc)]
    [InlineData("address", Ttrpc)]
    [InlineData("json-v2-ttrpc", """{"version":2,"address":"unix:///run/containerd/s/abc","protocol":"ttrpc"}""")]
    [InlineData("json-v2-grpc", """{"version":2,"address":"/run/containerd/s/abc.1234abcd.grpc","protocol":"grpc"}""")]
    [InlineData("json-v3-ttrpc", """{"version":3,"address":"unix:///run/containerd/s/abc","protocol":"ttrpc"}""")]
    [InlineData("json-v3-grpc", """{"version":3,"address":"/run/containerd/s/abc.1234abcd.grpc","protocol":"grpc"}""")]
    public void Each_form_prints_exactly_what_containerd_parses(string? configured, string expected)
    {
        StartOutput output = StartOutput.Parse(configured);

        Assert.Equal(expected, output.Format(Ttrpc, output.Grpc ? Grpc : null));
        Assert.Equal(configured?.EndsWith("-grpc", StringComparison.Ordinal) ?? false, output.Grpc);
    }

    [Theory]
    [InlineData("address")]
    [InlineData("json-v2-ttrpc")]
    [InlineData("json-v2-grpc")]
    [InlineData("json-v3-ttrpc")]
    [InlineData("json-v3-grpc")]
    public void No_form_parses_as_protobuf_which_containerd_2_3_tries_first(string configured)
    {
        // containerd 2.3 reads start's output as a protobuf BootstrapResult first and falls back to
        // JSON and then the plain address only when that fails: ours must fail it, at real lengths.
        string socket = "/run/containerd/s/" + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData("x"u8));
        StartOutput output = StartOutput.Parse(configured);
        for (int i = 0; i < 50; i++)
        {
            string grpc = StartOutput.GrpcSocketFor(socket);
            byte[] printed = Encoding.UTF8.GetBytes(output.Format("unix://" + socket, output.Grpc ? grpc : null));
            Assert.Throws<InvalidProtocolBufferException>(() => Empty.Parser.ParseFrom(printed));
        }
    }

    [Fact]
    public void An_unknown_form_is_an_error_naming_the_choices()
    {
        InvalidDataException error = Assert.Throws<InvalidDataException>(() => StartOutput.Parse("json-v4-grpc"));
        Assert.Contains("json-v3-grpc", error.Message, StringComparison.Ordinal);
        Assert.Contains(StartOutput.ConfigKey, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Grpc_sockets_are_unique_per_daemon_and_found_again_for_clean_up()
    {
        string directory = Directory.CreateTempSubdirectory("psh-grpc-").FullName;
        try
        {
            string ttrpc = Path.Combine(directory, new string('a', 64));
            string first = StartOutput.GrpcSocketFor(ttrpc);
            string second = StartOutput.GrpcSocketFor(ttrpc);
            Assert.NotEqual(first, second);
            Assert.StartsWith(ttrpc + ".", first, StringComparison.Ordinal);
            // /run/containerd/s/<64 hex> plus the suffix stays within a Unix socket path's 107 bytes.
            Assert.True(("/run/containerd/s/" + new string('a', 64) + first[ttrpc.Length..]).Length <= 107);

            File.WriteAllText(first, "");
            File.WriteAllText(ttrpc + "x.00000000.grpc", ""); // another group's
            Assert.Equal([first], StartOutput.GrpcSocketsOf(ttrpc));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }
}
