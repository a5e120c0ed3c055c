namespace PluggableShim.Host.Tasks;

/// <summary>When the daemon should exit: Shutdown was called with no task left, or a signal asked.</summary>
internal sealed class ShimLifetime
{
    private readonly TaskCompletionSource<string> _exit = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public Task<string> ExitRequested => _exit.Task;

    public void RequestExit(string reason) => _exit.TrySetResult(reason);
}
