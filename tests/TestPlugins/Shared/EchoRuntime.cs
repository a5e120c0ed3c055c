using System.Diagnostics;
using System.Runtime.InteropServices;
using PluggableShim.Abstractions;

namespace PluggableShim.TestPlugins;

/// <summary>A runtime whose every container's init is <c>/bin/echo TEXT</c>: enough to see what a plugin reports.</summary>
public sealed partial class EchoRuntime(string text) : IContainerRuntime
{
    /// <inheritdoc />
    public Task<IRuntimeContainer> CreateAsync(CreateContainerRequest request, CancellationToken cancellationToken = default) =>
        Task.FromResult<IRuntimeContainer>(new EchoContainer(new EchoProcess(text)));

    private sealed class EchoContainer(IRuntimeProcess init) : IRuntimeContainer
    {
        public IRuntimeProcess Init { get; } = init;

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }

    private sealed partial class EchoProcess(string text) : IRuntimeProcess
    {
        private readonly TaskCompletionSource<ProcessExit> _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private Process? _process;

        public int Pid => _process?.Id ?? 0;

        public Task<ProcessExit> Exited => _exited.Task;

        public Task<StartedProcess> StartAsync(CancellationToken cancellationToken = default)
        {
            var process = new Process
            {
                StartInfo = new ProcessStartInfo("/bin/echo", [text]) { RedirectStandardOutput = true, UseShellExecute = false },
                EnableRaisingEvents = true,
            };
            process.Exited += (_, _) => _exited.TrySetResult(new ProcessExit(process.ExitCode, DateTimeOffset.UtcNow));
            process.Start();
            _process = process;
            return Task.FromResult(new StartedProcess(process.Id, null, process.StandardOutput.BaseStream, null));
        }

        public Task SignalAsync(int signal, bool all, CancellationToken cancellationToken = default)
        {
            if (_process is null)
            {
                _exited.TrySetResult(new ProcessExit(128 + signal, DateTimeOffset.UtcNow));
            }
            else if (Kill(_process.Id, signal) != 0)
            {
                throw new NotFoundException("exited");
            }

            return Task.CompletedTask;
        }

        [LibraryImport("libc", EntryPoint = "kill")]
        private static partial int Kill(int pid, int signal);
    }
}
