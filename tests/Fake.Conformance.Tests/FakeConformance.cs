using PluggableShim.Abstractions;
using PluggableShim.Conformance;
using PluggableShim.Plugins.Fake;
using PluggableShim.Testing;

namespace PluggableShim.Fake.Conformance.Tests;

/// <summary>The bundled Fake plugin, as published in the host's plugins folder.</summary>
public sealed class FakeTarget : ConformanceTarget
{
    public override string PluginName => "fake";

    public override TaskCapabilities Capabilities => new FakePlugin().Info.Capabilities;

    public override Task<string> HostDirectoryAsync(CancellationToken cancellationToken) => ShimBuild.DirectoryAsync(cancellationToken);
}

public sealed class FakeConformance(ConformanceInstallation<FakeTarget> installation) : ShimConformance<FakeTarget>(installation);
