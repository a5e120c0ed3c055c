using PluggableShim.Host.Grouping;

namespace PluggableShim.Host.Tests.Grouping;

public sealed class GroupLockTests : IDisposable
{
    private readonly string _path = Path.Combine(Directory.CreateTempSubdirectory("psh-lock-").FullName, "s.lock");

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    public void Dispose() => Directory.Delete(Path.GetDirectoryName(_path)!, recursive: true);

    [Fact]
    public async Task A_second_holder_waits_and_times_out_with_the_path_in_the_message()
    {
        using GroupLock first = await GroupLock.AcquireAsync(_path, TimeSpan.FromSeconds(1), Token);

        var error = await Assert.ThrowsAsync<TimeoutException>(
            () => GroupLock.AcquireAsync(_path, TimeSpan.FromMilliseconds(200), Token));

        Assert.Contains(_path, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_waiter_gets_the_lock_once_it_is_released()
    {
        GroupLock first = await GroupLock.AcquireAsync(_path, TimeSpan.FromSeconds(1), Token);
        Task<GroupLock> second = GroupLock.AcquireAsync(_path, TimeSpan.FromSeconds(5), Token);
        await Task.Delay(100, Token);
        Assert.False(second.IsCompleted);

        first.Dispose();
        using GroupLock got = await second.WaitAsync(TimeSpan.FromSeconds(5), Token);
        Assert.True(File.Exists(_path));
    }

    [Fact]
    public async Task A_waiter_on_a_deleted_lock_file_locks_the_new_one_and_excludes_a_newcomer()
    {
        GroupLock first = await GroupLock.AcquireAsync(_path, TimeSpan.FromSeconds(1), Token);
        Task<GroupLock> waiter = GroupLock.AcquireAsync(_path, TimeSpan.FromSeconds(5), Token);
        await Task.Delay(100, Token);

        // The daemon's last act: delete the lock file, then release it.
        first.DeleteFile();
        first.Dispose();
        using GroupLock got = await waiter.WaitAsync(TimeSpan.FromSeconds(5), Token);

        // The waiter must hold the file that is at the path now, or a newcomer would get in too.
        Assert.True(File.Exists(_path));
        await Assert.ThrowsAsync<TimeoutException>(() => GroupLock.AcquireAsync(_path, TimeSpan.FromMilliseconds(200), Token));
    }
}
