using System.Diagnostics;
using Microsoft.Extensions.Logging;
using PluggableShim.Abstractions;
using PluggableShim.Host.Posix;

namespace PluggableShim.Host.IO.Internal;

/// <summary>
/// A <c>binary://</c> logging program: it reads the process's stdout on fd 3 and stderr on fd 4,
/// and says it is ready by closing fd 5 (or writing to it).
/// </summary>
/// <remarks>
/// Start: three pipes, created close-on-exec so no other child of the shim (a container process
/// above all) ever holds an end; the program's ends are moved above fd 9 so that placing them on
/// 3, 4 and 5 cannot collide. posix_spawn gives it a session of its own (out of containerd's),
/// /dev/null as 0-2, argv = [path, key1, value1, …] and an environment of CONTAINER_ID and
/// CONTAINER_NAMESPACE only, as containerd's shims do. Our copies of its ends are closed right
/// after the spawn: otherwise neither side could ever see end of file.
///
/// Readiness is awaited with a deadline. End of file on fd 5 also happens when the program dies,
/// so every readiness signal is checked against the program's state: exited (waitid without
/// reaping) or exiting (PF_EXITING in /proc/PID/stat, which the kernel sets before it closes a
/// dying process's descriptors, so this check has no race with the EOF that prompted it).
///
/// Stop: our pipe ends close (the relays release them when the process's output ends), so the
/// program sees EOF on fds 3 and 4 and should exit. It gets <see cref="IoContext.LoggerExitGrace"/>
/// for that (cut short when the task is deleted), then SIGTERM, then SIGKILL, each wait bounded.
/// Signals go to its process group (its session's), so helpers it started go too. The leader is
/// observed exited without being reaped (WNOWAIT): while it is a zombie its pid, and so its group
/// id, cannot be reused, which makes the final SIGKILL to the group safe; only then is it reaped.
/// Only this class waits for this pid; a plugin reaping every child (waitpid(-1)) would take the
/// status away and the stop would then end at once, finding nothing to wait for.
///
/// If the shim itself dies, the program's fds 3 and 4 lose their only writer (ours), so it sees
/// EOF then too.
/// </remarks>
internal sealed class LoggingProgram
{
    public const int StdoutFd = 3;
    public const int StderrFd = 4;
    public const int ReadyFd = 5;

    private const int PfExiting = 0x4;
    private const int MovedAbove = 10;

    private readonly int _pid;
    private readonly IoContext _context;
    private readonly ILogger _logger;
    private readonly TaskCompletionSource _hurry = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Lock _gate = new();

    // Guarded by _gate.
    private Task? _stopped;

    private LoggingProgram(int pid, IoContext context, ILogger logger, PipeSink stdout, PipeSink stderr)
    {
        _pid = pid;
        _context = context;
        _logger = logger;
        Stdout = stdout;
        Stderr = stderr;
    }

    public int Pid => _pid;

    /// <summary>Feeds the program's fd 3.</summary>
    public PipeSink Stdout { get; }

    /// <summary>Feeds the program's fd 4.</summary>
    public PipeSink Stderr { get; }

    /// <summary>Starts the program and waits until it is ready, or fails with nothing left behind.</summary>
    /// <exception cref="InvalidArgumentException">The program does not exist.</exception>
    /// <exception cref="FailedPreconditionException">It cannot start, exits early or is not ready in time.</exception>
    public static async Task<LoggingProgram> StartAsync(
        OutputTarget.BinaryTarget target,
        IoContext context,
        ILogger logger,
        CancellationToken cancellationToken)
    {
        if (!File.Exists(target.Program))
        {
            throw new InvalidArgumentException($"logging program {target.Program} does not exist");
        }

        var owned = new List<FileDescriptor>();
        int pid = 0;
        try
        {
            (FileDescriptor outRead, FileDescriptor outWrite) = Pipe(owned, nonBlockingReader: false, nonBlockingWriter: true);
            (FileDescriptor errRead, FileDescriptor errWrite) = Pipe(owned, nonBlockingReader: false, nonBlockingWriter: true);
            (FileDescriptor readyRead, FileDescriptor readyWrite) = Pipe(owned, nonBlockingReader: true, nonBlockingWriter: false);
            try
            {
                pid = Spawner.Spawn(
                    target.Program,
                    [target.Program, .. target.Arguments],
                    ["CONTAINER_ID=" + context.ContainerId, "CONTAINER_NAMESPACE=" + context.Namespace],
                    [(outRead.Fd, StdoutFd), (errRead.Fd, StderrFd), (readyWrite.Fd, ReadyFd)]);
            }
            catch (IOException ex)
            {
                throw new FailedPreconditionException($"logging program {target.Program} cannot be started: {ex.Message}");
            }

            outRead.Dispose();
            errRead.Dispose();
            readyWrite.Dispose();
            IoLog.LoggerSpawned(logger, context.ContainerId, target.Program, pid);

            await WaitReadyAsync(pid, target.Program, readyRead, context.OpenTimeout, cancellationToken).ConfigureAwait(false);
            readyRead.Dispose();
            IoLog.LoggerReady(logger, context.ContainerId, target.Program, pid);
            return new LoggingProgram(pid, context, logger, new PipeSink(outWrite), new PipeSink(errWrite));
        }
        catch
        {
            foreach (FileDescriptor fd in owned)
            {
                fd.Dispose();
            }

            if (pid > 0)
            {
                await KillAndReapAsync(pid, context.LoggerStopTimeout, logger, context.ContainerId).ConfigureAwait(false);
            }

            throw;
        }
    }

    /// <summary>
    /// Closes the program's input and waits, bounded, until it has gone (see the remarks for the
    /// steps). Idempotent; <paramref name="hurry"/> skips what is left of the exit grace.
    /// </summary>
    public Task StopAsync(bool hurry)
    {
        if (hurry)
        {
            _hurry.TrySetResult();
        }

        lock (_gate)
        {
            return _stopped ??= Task.Run(StopCoreAsync);
        }
    }

    private async Task StopCoreAsync()
    {
        // Usually released already by the relays; closing here too makes EOF certain.
        Stdout.Dispose();
        Stderr.Dispose();
        try
        {
            if (!await WaitExitedAsync(_pid, _context.LoggerExitGrace, _hurry.Task).ConfigureAwait(false))
            {
                IoLog.LoggerSignalled(_logger, _context.ContainerId, _pid, "SIGTERM");
                SignalGroup(_pid, Native.SigTerm);
                if (!await WaitExitedAsync(_pid, _context.LoggerStopTimeout, Never).ConfigureAwait(false))
                {
                    IoLog.LoggerSignalled(_logger, _context.ContainerId, _pid, "SIGKILL");
                    await KillAndReapAsync(_pid, _context.LoggerStopTimeout, _logger, _context.ContainerId)
                        .ConfigureAwait(false);
                    return;
                }
            }

            IoLog.LoggerStopped(_logger, _context.ContainerId, _pid, FinishOff(_pid));
        }
        catch (Exception ex)
        {
            // Background stop: record why it ended rather than fault a task nobody may observe.
            IoLog.LoggerStopFailed(_logger, _context.ContainerId, _pid, ex);
        }
    }

    private static async Task WaitReadyAsync(
        int pid, string program, FileDescriptor ready, TimeSpan timeout, CancellationToken cancellationToken)
    {
        long deadline = Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        int delay = 2;
        while (true)
        {
            if (ReadySignalled(ready))
            {
                string? exit = await ExitStatusAsync(pid).ConfigureAwait(false);
                if (exit is not null)
                {
                    throw new FailedPreconditionException($"logging program {program} {exit} before it was ready");
                }

                return;
            }

            // It may have died while a child of its own holds fd 5 open.
            string? gone = await ExitStatusAsync(pid).ConfigureAwait(false);
            if (gone is not null)
            {
                throw new FailedPreconditionException($"logging program {program} {gone} before it was ready");
            }

            if (Stopwatch.GetTimestamp() >= deadline)
            {
                throw new FailedPreconditionException(
                    $"logging program {program} did not signal readiness within {timeout.TotalSeconds:0.###} s " +
                    $"(it must close fd {ReadyFd}, or write a byte to it, once it reads fds {StdoutFd} and {StderrFd})");
            }

            await Task.Delay(delay, cancellationToken).ConfigureAwait(false);
            delay = Math.Min(delay * 2, 50);
        }
    }

    // Null while it runs. One caught exiting (its descriptors may close before it is a zombie)
    // is given a moment, bounded, to become one, so the error can say how it ended.
    private static async Task<string?> ExitStatusAsync(int pid)
    {
        string? exit = ExitedOrExiting(pid);
        if (exit is null)
        {
            return null;
        }

        if (Probe(pid) == Exit.Running)
        {
            _ = await WaitExitedAsync(pid, TimeSpan.FromSeconds(1), Never).ConfigureAwait(false);
        }

        // Asked again: it may have become a zombie (with a status) since the first look.
        return ExitedOrExiting(pid) ?? exit;
    }

    // True once a byte arrived or the writing end closed; never blocks (the read end is non-blocking).
    private static unsafe bool ReadySignalled(FileDescriptor ready)
    {
        var poll = new Native.PollFd { Fd = ready.Fd, Events = Native.PollIn };
        int n = Native.Poll(&poll, 1, 0);
        if (n <= 0)
        {
            return false;
        }

        return (poll.Revents & (Native.PollIn | Native.PollHup | Native.PollErr)) != 0;
    }

    /// <summary>How the program ended if it has (or is ending), else null. Does not reap it.</summary>
    private static unsafe string? ExitedOrExiting(int pid)
    {
        byte* info = stackalloc byte[Native.SigInfoSize];
        new Span<byte>(info, Native.SigInfoSize).Clear();
        if (Native.WaitId(Native.PPid, pid, info, Native.WExited | Native.WNoHang | Native.WNoWait) != 0)
        {
            return "is gone (reaped elsewhere)";
        }

        if (*(int*)(info + Native.SigInfoPidOffset) == pid)
        {
            return Describe(info);
        }

        try
        {
            // "pid (comm) state ppid pgrp session tty_nr tpgid flags …"; comm may hold spaces.
            string stat = File.ReadAllText($"/proc/{pid}/stat");
            string[] fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            bool exiting = fields[0] is "Z" or "X"
                || (uint.TryParse(fields[6], out uint flags) && (flags & PfExiting) != 0);
            return exiting ? "exited" : null;
        }
        catch (IOException)
        {
            return "exited";
        }
    }

    private static unsafe string Describe(byte* info)
    {
        const int CldExited = 1;
        int code = *(int*)(info + 8);
        int status = *(int*)(info + Native.SigInfoStatusOffset);
        return code == CldExited ? $"exited with status {status}" : $"was killed by signal {status}";
    }

    private static readonly Task Never = new TaskCompletionSource().Task;

    // True once the program has exited (not reaped); false at the deadline or when cut short.
    private static async Task<bool> WaitExitedAsync(int pid, TimeSpan timeout, Task cutShort)
    {
        long deadline = Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        int delay = 2;
        while (Probe(pid) == Exit.Running)
        {
            if (Stopwatch.GetTimestamp() >= deadline || cutShort.IsCompleted)
            {
                return false;
            }

            await Task.WhenAny(Task.Delay(delay), cutShort).ConfigureAwait(false);
            delay = Math.Min(delay * 2, 50);
        }

        return true;
    }

    private enum Exit
    {
        Running,
        Zombie, // exited, not yet reaped: the pid is still ours
        Gone,   // reaped by someone else: the pid may already belong to another process
    }

    private static unsafe Exit Probe(int pid)
    {
        byte* info = stackalloc byte[Native.SigInfoSize];
        new Span<byte>(info, Native.SigInfoSize).Clear();
        if (Native.WaitId(Native.PPid, pid, info, Native.WExited | Native.WNoHang | Native.WNoWait) != 0)
        {
            return Exit.Gone;
        }

        return *(int*)(info + Native.SigInfoPidOffset) == pid ? Exit.Zombie : Exit.Running;
    }

    private static async Task KillAndReapAsync(int pid, TimeSpan timeout, ILogger logger, string containerId)
    {
        SignalGroup(pid, Native.SigKill);
        if (!await WaitExitedAsync(pid, timeout, Never).ConfigureAwait(false))
        {
            // Stuck in the kernel (uninterruptible sleep): nothing more a process can do about it.
            IoLog.LoggerNotReaped(logger, containerId, pid, timeout.TotalSeconds);
            return;
        }

        IoLog.LoggerStopped(logger, containerId, pid, FinishOff(pid));
    }

    // The leader has exited. As a zombie its group id cannot be reused, so whatever it left
    // behind in its group can be killed safely; then it is reaped.
    private static string FinishOff(int pid)
    {
        if (Probe(pid) == Exit.Gone)
        {
            return "reaped elsewhere";
        }

        SignalGroup(pid, Native.SigKill);
        return Reap(pid);
    }

    private static void SignalGroup(int pid, int signal)
    {
        if (Probe(pid) == Exit.Gone)
        {
            return;
        }

        // Its own session, so its group id is its pid. ESRCH: nothing left to signal.
        if (Native.Kill(-pid, signal) != 0)
        {
            _ = Native.Kill(pid, signal);
        }
    }

    private static unsafe string Reap(int pid)
    {
        int status;
        if (Native.WaitPid(pid, &status, Native.WNoHang) != pid)
        {
            return "reaped elsewhere";
        }

        return (status & 0x7f) == 0 ? $"exit status {(status >> 8) & 0xff}" : $"signal {status & 0x7f}";
    }

    private static unsafe (FileDescriptor Read, FileDescriptor Write) Pipe(
        List<FileDescriptor> owned, bool nonBlockingReader, bool nonBlockingWriter)
    {
        int* fds = stackalloc int[2];
        if (Native.Pipe2(fds, Native.OCloExec) != 0)
        {
            throw new IOException("pipe2 failed: " + Native.Describe(Native.LastError));
        }

        var read = new FileDescriptor(fds[0]);
        owned.Add(read);
        var write = new FileDescriptor(fds[1]);
        owned.Add(write);

        // The program's end (the writer of the readiness pipe, else the reader) is dup2'd onto 3-5:
        // above 9 it can never be one of those targets, nor 0-2.
        FileDescriptor theirs = nonBlockingReader ? write : read;
        FileDescriptor moved = MoveAbove(theirs, owned);
        if (nonBlockingReader)
        {
            write = moved;
            SetNonBlocking(read);
        }
        else
        {
            read = moved;
        }

        if (nonBlockingWriter)
        {
            SetNonBlocking(write);
        }

        return (read, write);
    }

    private static FileDescriptor MoveAbove(FileDescriptor fd, List<FileDescriptor> owned)
    {
        int moved = Native.Fcntl(fd.Fd, Native.FDupFdCloExec, MovedAbove);
        if (moved < 0)
        {
            throw new IOException("fcntl(F_DUPFD_CLOEXEC) failed: " + Native.Describe(Native.LastError));
        }

        var result = new FileDescriptor(moved);
        owned.Add(result);
        owned.Remove(fd);
        fd.Dispose();
        return result;
    }

    // Only our end: O_NONBLOCK belongs to the open file description, and each end has its own.
    private static void SetNonBlocking(FileDescriptor fd)
    {
        int flags = Native.Fcntl(fd.Fd, Native.FGetFl, 0);
        if (flags < 0 || Native.Fcntl(fd.Fd, Native.FSetFl, flags | Native.ONonBlock) < 0)
        {
            throw new IOException("fcntl(O_NONBLOCK) failed: " + Native.Describe(Native.LastError));
        }
    }
}
