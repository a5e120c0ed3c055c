using PluggableShim.Testing.Containerd;

namespace PluggableShim.Ttrpc.Tests.Interop;

/// <summary>
/// One private containerd per test class, the real peer these tests hold our ttrpc code against.
/// It is started only where it can run; tests call <see cref="Require"/>, which skips them visibly
/// otherwise.
/// </summary>
public sealed class ContainerdPeer : IAsyncLifetime
{
    private LocalContainerd? _containerd;

    /// <summary>The running containerd, or a skip when this machine cannot run one.</summary>
    public LocalContainerd Require()
    {
        LocalContainerd.SkipUnlessAvailable();
        return _containerd ?? throw new InvalidOperationException("containerd not started");
    }

    public async ValueTask InitializeAsync()
    {
        if (LocalContainerd.Unavailable() is null)
        {
            _containerd = await LocalContainerd.StartAsync();
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_containerd is not null)
        {
            await _containerd.DisposeAsync();
        }
    }
}
