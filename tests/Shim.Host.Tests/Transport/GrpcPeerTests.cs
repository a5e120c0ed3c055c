using PluggableShim.Host.Tests.Support;
using PluggableShim.Testing;

namespace PluggableShim.Host.Tests.Transport;

/// <summary>
/// The gRPC server, like the ttrpc one, serves only peers with its own uid (SO_PEERCRED). The
/// socket is opened to everyone here so that only that check stands in the other user's way;
/// curl (HTTP/2 prior knowledge on the Unix socket) is the peer, as root and as nobody.
/// </summary>
public sealed class GrpcPeerTests
{
    [Fact]
    public async Task A_peer_with_another_uid_is_cut_off_and_the_same_uid_is_answered()
    {
        if (!OperatingSystem.IsLinux() || Environment.UserName != "root" || !File.Exists("/usr/bin/curl") || !File.Exists("/usr/bin/setpriv"))
        {
            Assert.Skip("needs Linux, root, curl and setpriv (to be another user)");
            return;
        }

        await using TaskApiHarness shim = await TaskApiHarness.StartAsync(transport: "grpc-v2");
        string socket = shim.GrpcSocket!;
        File.SetUnixFileMode(shim.Bundle, (UnixFileMode)0b111_101_101);
        File.SetUnixFileMode(socket, (UnixFileMode)0b110_110_110);
        // An empty gRPC message (flag 0, length 0) to Connect: the answer is a gRPC status either way.
        string curl = $"curl -sS -i --http2-prior-knowledge --unix-socket '{socket}' -X POST " +
                      "-H 'content-type: application/grpc' -H 'te: trailers' --data-binary @/dev/null " +
                      "http://localhost/containerd.task.v2.Task/Connect";

        CommandResult asRoot = await ProcessRunner.RunAsync("/bin/sh", ["-c", curl], TimeSpan.FromSeconds(30), cancellationToken: TestContext.Current.CancellationToken);
        CommandResult asNobody = await ProcessRunner.RunAsync(
            "/bin/sh", ["-c", "exec setpriv --reuid=65534 --regid=65534 --clear-groups " + curl], TimeSpan.FromSeconds(30),
            cancellationToken: TestContext.Current.CancellationToken);

        Assert.Contains("HTTP/2 200", asRoot.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("HTTP/2", asNobody.Stdout, StringComparison.Ordinal);
        Assert.NotEqual(0, asNobody.ExitCode);
        // curl reports a connection cut at once as "couldn't connect" too, so show that the file
        // system let nobody reach the socket: only the uid check can have turned it away.
        CommandResult reachable = await ProcessRunner.RunAsync(
            "/bin/sh", ["-c", $"exec setpriv --reuid=65534 --regid=65534 --clear-groups /bin/sh -c \"test -w '{socket}'\""],
            TimeSpan.FromSeconds(30), cancellationToken: TestContext.Current.CancellationToken);
        Assert.True(reachable.ExitCode == 0, $"nobody cannot even open {socket}, so the test proves nothing: {reachable.Stderr}");
    }
}
