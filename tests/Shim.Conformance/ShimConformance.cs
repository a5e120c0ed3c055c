using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using PluggableShim.Abstractions;
using PluggableShim.Contracts.Task;
using Task = System.Threading.Tasks.Task;

namespace PluggableShim.Conformance;

/// <summary>
/// The Task API contract, as containerd relies on it, run against the published host with the
/// target's plugin. A plugin's test project needs one line to run all of it:
/// <code>
/// public sealed class Conformance(ConformanceInstallation&lt;MyTarget&gt; installation)
///     : ShimConformance&lt;MyTarget&gt;(installation);
/// </code>
/// Every test launches its own shim through <c>start</c> and talks to it only through the
/// address <c>start</c> printed; events go to a recording Events server, no containerd is needed.
/// </summary>
/// <typeparam name="TTarget">What is tested: the host folder, the plugin, how to make its bundles.</typeparam>
public abstract partial class ShimConformance<TTarget> : IClassFixture<ConformanceInstallation<TTarget>>, IDisposable
    where TTarget : ConformanceTarget, new()
{
    private readonly List<LaunchedShim> _launched = [];

    /// <summary>The Any type URL of an OCI process spec (Exec).</summary>
    protected const string ProcessSpecType = "types.containerd.io/opencontainers/runtime-spec/1/Process";

    /// <summary>Uses the class's installation.</summary>
    protected ShimConformance(ConformanceInstallation<TTarget> installation)
    {
        Installation = installation ?? throw new ArgumentNullException(nameof(installation));
    }

    /// <summary>The installed host.</summary>
    protected ConformanceInstallation Installation { get; }

    /// <summary>What is tested.</summary>
    protected ConformanceTarget Target => Installation.Target;

    /// <summary>How long anything may take that should happen soon.</summary>
    protected TimeSpan Bound => Target.Timeout;

    /// <summary>The test's cancellation.</summary>
    protected static CancellationToken Token => TestContext.Current.CancellationToken;

    /// <summary>A fresh container id.</summary>
    protected static string NewId(string stem) => $"{stem}-{Guid.NewGuid():N}"[..(stem.Length + 13)];

    /// <summary>Whether the plugin declares <paramref name="capability"/>.</summary>
    protected bool Supports(TaskCapabilities capability) => Target.Capabilities.HasFlag(capability);

    /// <summary>Skips (visibly) where the host cannot run; under <c>PLUGGABLESHIM_REQUIRE_CONTAINERD</c> fails instead.</summary>
    protected static void RequireHost()
    {
        if (ConformanceInstallation.Unavailable() is { } reason)
        {
            if (!string.IsNullOrEmpty(Environment.GetEnvironmentVariable("PLUGGABLESHIM_REQUIRE_CONTAINERD")))
            {
                Assert.Fail(reason + " (required here)");
            }

            Assert.Skip(reason);
        }
    }

    /// <summary>Launches a shim for a new container whose init does <paramref name="behavior"/>.</summary>
    protected async Task<LaunchedShim> LaunchAsync(
        string stem,
        ProcessBehavior behavior,
        IReadOnlyDictionary<string, string>? annotations = null,
        RecordingEvents? joinEvents = null)
    {
        RequireHost();
        LaunchedShim shim = await LaunchedShim.StartAsync(Installation, NewId(stem), behavior, annotations, joinEvents, Token);
        _launched.Add(shim);
        return shim;
    }

    /// <summary>Writes the shim log of every shim the test launched to the test's output (shown when it fails).</summary>
    public void Dispose()
    {
        GC.SuppressFinalize(this);
        foreach (LaunchedShim shim in _launched)
        {
            TestContext.Current.TestOutputHelper?.WriteLine($"--- shim log of {shim.Id} ---\n{shim.ShimLog}");
        }
    }

    /// <summary>Creates the shim's task with fresh client FIFOs.</summary>
    protected async Task<ClientIo> CreateAsync(LaunchedShim shim)
    {
        ArgumentNullException.ThrowIfNull(shim);
        var io = new ClientIo(Installation.WorkDirectory);
        try
        {
            await shim.Task.CreateAsync(shim.CreateRequest(io), cancellationToken: Token);
            return io;
        }
        catch
        {
            io.Dispose();
            throw;
        }
    }

    /// <summary>Deletes the (exited) task and shuts its shim down, checking that nothing of it is left.</summary>
    protected async Task DeleteAndShutdownAsync(LaunchedShim shim)
    {
        ArgumentNullException.ThrowIfNull(shim);
        await shim.Task.DeleteAsync(new DeleteRequest { Id = shim.Id }, cancellationToken: Token);
        await shim.Task.ShutdownAsync(new ShutdownRequest { Id = shim.Id }, cancellationToken: Token);
        await shim.WaitUntilGoneAsync(Bound);
    }

    /// <summary>An exec request for <paramref name="behavior"/> with <paramref name="io"/>.</summary>
    protected ExecProcessRequest ExecRequest(LaunchedShim shim, string execId, ProcessBehavior behavior, ClientIo? io)
    {
        ArgumentNullException.ThrowIfNull(shim);
        return new ExecProcessRequest
        {
            Id = shim.Id,
            ExecId = execId,
            Stdin = io?.Stdin ?? "",
            Stdout = io?.Stdout ?? "",
            Stderr = io?.Stderr ?? "",
            Spec = new Any { TypeUrl = ProcessSpecType, Value = ByteString.CopyFromUtf8(Target.ProcessSpec(behavior).ToJsonString()) },
        };
    }

    /// <summary>Asserts that <paramref name="call"/> fails with <paramref name="code"/>.</summary>
    protected static async Task<RpcException> AssertStatusAsync(StatusCode code, Task call, string what)
    {
        ArgumentNullException.ThrowIfNull(call);
        try
        {
            await call;
        }
        catch (RpcException ex)
        {
            Assert.True(ex.StatusCode == code, $"{what}: expected {code}, got {ex.StatusCode} \"{ex.Status.Detail}\"");
            return ex;
        }

        throw new Xunit.Sdk.XunitException($"{what}: expected {code}, but the call succeeded");
    }

    /// <summary>
    /// Asserts that a declared operation works: <paramref name="call"/> succeeds, or is refused with
    /// one of <paramref name="refusals"/> — codes of the contract (NotFound, AlreadyExists,
    /// FailedPrecondition, InvalidArgument) that a runtime may rightly answer to the kit's request.
    /// Unimplemented, Unknown, Internal or any other code fails.
    /// </summary>
    protected static async Task AssertWorksAsync(Task call, string what, params StatusCode[] refusals)
    {
        ArgumentNullException.ThrowIfNull(call);
        ArgumentNullException.ThrowIfNull(refusals);
        if (!refusals.All(c => c is StatusCode.NotFound or StatusCode.AlreadyExists or StatusCode.FailedPrecondition or StatusCode.InvalidArgument))
        {
            throw new ArgumentException("only NotFound, AlreadyExists, FailedPrecondition and InvalidArgument may be allowed", nameof(refusals));
        }

        try
        {
            await call;
        }
        catch (RpcException ex) when (!refusals.Contains(ex.StatusCode))
        {
            string allowed = refusals.Length == 0 ? "success" : $"success or {string.Join(" or ", refusals)}";
            throw new Xunit.Sdk.XunitException(
                $"{what} is a declared capability and must work: expected {allowed}, got {ex.StatusCode} \"{ex.Status.Detail}\"");
        }
    }

    /// <summary>Waits until <paramref name="condition"/> holds.</summary>
    protected async Task UntilAsync(Func<bool> condition, string failure)
    {
        ArgumentNullException.ThrowIfNull(condition);
        DateTime deadline = DateTime.UtcNow + Bound;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new Xunit.Sdk.XunitException(failure);
            }

            await Task.Delay(20, Token);
        }
    }
}
