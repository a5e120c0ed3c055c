using PluggableShim.Testing;
using PluggableShim.Testing.Containerd;

namespace PluggableShim.EndToEnd.Tests.Support;

/// <summary>
/// One private containerd for the whole collection, with the published shim first on its PATH
/// (so <c>io.containerd.fake.v1</c> resolves by name). Tests call <see cref="RequireAsync"/>,
/// which skips them visibly when this machine cannot run containerd.
/// </summary>
public sealed class ContainerdFixture : IAsyncLifetime
{
    private LocalContainerd? _containerd;

    public LocalContainerd Containerd => _containerd ?? throw new InvalidOperationException("containerd not started");

    /// <summary>The folder with the published host and its <c>containerd-shim-fake-v1</c> link.</summary>
    public string ShimDirectory { get; private set; } = "";

    /// <summary>The fake shim as an absolute runtime path (containerd 1.6 accepts one).</summary>
    public string FakeShim { get; private set; } = "";

    public async ValueTask InitializeAsync()
    {
        if (LocalContainerd.Unavailable() is not null)
        {
            return;
        }

        ShimDirectory = await ShimBuild.DirectoryAsync();
        FakeShim = await ShimBuild.InstalledAsAsync("fake");
        _containerd = await LocalContainerd.StartAsync(ShimDirectory);
    }

    /// <summary>The running containerd, with the busybox image imported into <paramref name="ns"/>.</summary>
    public async Task<LocalContainerd> RequireAsync(string ns)
    {
        LocalContainerd.SkipUnlessAvailable();
        await Containerd.ImportBusyboxAsync(ns);
        return Containerd;
    }

    public async ValueTask DisposeAsync()
    {
        if (_containerd is not null)
        {
            await _containerd.DisposeAsync();
        }
    }
}

[CollectionDefinition(Name)]
public sealed class ContainerdCollection : ICollectionFixture<ContainerdFixture>
{
    public const string Name = "containerd";
}
