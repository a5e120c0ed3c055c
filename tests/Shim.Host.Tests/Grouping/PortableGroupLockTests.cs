using PluggableShim.Host.Grouping;

namespace PluggableShim.Host.Tests.Grouping;

/// <summary>
/// The group lock of the Windows path: a file opened FileShare.None (an flock in .NET on Linux,
/// a sharing violation on Windows), removed on every release. Windows' DeleteOnClose is not run here.
/// </summary>
public sealed class PortableGroupLockTests : IDisposable
{
    private readonly string _path = Path.Combine(Directory.CreateTempSubdirectory("psh-plock-").FullName, "g.pipe.lock");

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    public void Dispose() => Directory.Delete(Path.GetDirectoryName(_path)!, recursive: true);

    [Fact]
    public async Task A_second_holder_waits_and_times_out_naming_the_lock()
    {
        using GroupLock first = await GroupLock.AcquireFileAsync(_path, TimeSpan.FromSeconds(1), Token);

        var error = await Assert.ThrowsAsync<TimeoutException>(() => GroupLock.AcquireFileAsync(_path, TimeSpan.FromMilliseconds(200), Token));

        Assert.Contains(_path, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_waiter_gets_the_lock_on_release_excludes_a_newcomer_and_no_file_is_left_after_the_last_release()
    {
        GroupLock first = await GroupLock.AcquireFileAsync(_path, TimeSpan.FromSeconds(1), Token);
        Task<GroupLock> second = GroupLock.AcquireFileAsync(_path, TimeSpan.FromSeconds(5), Token);
        await Task.Delay(100, Token);
        Assert.False(second.IsCompleted, "two holders at once");

        first.Dispose();
        GroupLock got = await second.WaitAsync(TimeSpan.FromSeconds(5), Token);
        await Assert.ThrowsAsync<TimeoutException>(() => GroupLock.AcquireFileAsync(_path, TimeSpan.FromMilliseconds(200), Token));

        got.DeleteFile(); // the daemon's last act: harmless, the release removes the file anyway
        got.Dispose();
        Assert.False(File.Exists(_path), "lock file left behind");
    }

    [Fact]
    public async Task A_missing_folder_is_an_error_at_once_not_a_wait()
    {
        string nowhere = Path.Combine(Path.GetDirectoryName(_path)!, "missing", "x.lock");

        await Assert.ThrowsAsync<DirectoryNotFoundException>(() => GroupLock.AcquireFileAsync(nowhere, TimeSpan.FromSeconds(5), Token));
    }
}
