using PluggableShim.Abstractions;
using PluggableShim.Conformance;
using PluggableShim.Plugins.Fake;
using PluggableShim.Testing;

namespace PluggableShim.Fake.Conformance.Tests;

/// <summary>The bundled Fake plugin, as published in the host's plugins folder.</summary>
public class FakeTarget : ConformanceTarget
{
    public override string PluginName => "fake";

    public override TaskCapabilities Capabilities => new FakePlugin().Info.Capabilities;

    public override Task<string> HostDirectoryAsync(CancellationToken cancellationToken) => ShimBuild.DirectoryAsync(cancellationToken);
}

public sealed class FakeConformance(ConformanceInstallation<FakeTarget> installation) : ShimConformance<FakeTarget>(installation);

/// <summary>Fake over gRPC, as containerd 2.x takes it: bootstrap JSON version 3, <c>containerd.task.v3.Task</c>.</summary>
public sealed class FakeGrpcV3Target : FakeTarget
{
    public override string? StartOutput => "json-v3-grpc";
}

/// <summary>Fake over gRPC, as containerd 1.7 takes it: bootstrap JSON version 2, <c>containerd.task.v2.Task</c>.</summary>
public sealed class FakeGrpcV2Target : FakeTarget
{
    public override string? StartOutput => "json-v2-grpc";
}

public sealed class FakeGrpcV3Conformance(ConformanceInstallation<FakeGrpcV3Target> installation)
    : ShimConformance<FakeGrpcV3Target>(installation);

public sealed class FakeGrpcV2Conformance(ConformanceInstallation<FakeGrpcV2Target> installation)
    : ShimConformance<FakeGrpcV2Target>(installation);
