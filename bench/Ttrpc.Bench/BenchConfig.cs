using System.Reflection;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Characteristics;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Loggers;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains;
using BenchmarkDotNet.Toolchains.CsProj;
using BenchmarkDotNet.Validators;

namespace PluggableShim.Ttrpc.Bench;

/// <summary>
/// One short job so that a full run takes a few minutes on a 2-core machine: one process,
/// three warm-up and fifteen measured iterations of about half a second each. Reports land in
/// bench/Ttrpc.Bench/BenchmarkDotNet.Artifacts rather than in the repository root.
/// </summary>
internal static class BenchConfig
{
    private static readonly string? ProjectFile = typeof(BenchConfig).Assembly
        .GetCustomAttributes<AssemblyMetadataAttribute>()
        .FirstOrDefault(a => a.Key == "BenchProjectFile")?.Value;

    public static IConfig Create() => DefaultConfig.Instance
        .WithArtifactsPath(ProjectFile is null
            ? DefaultConfig.Instance.ArtifactsPath
            : Path.Combine(Path.GetDirectoryName(ProjectFile)!, "BenchmarkDotNet.Artifacts"))
        .AddJob(Job.Default
            .WithId("Short")
            .WithLaunchCount(1)
            .WithWarmupCount(3)
            .WithIterationCount(15)
            .WithToolchain(ThisProjectToolchain.Instance))
        .AddColumn(StatisticColumn.Median, StatisticColumn.OperationsPerSecond);

    /// <summary>
    /// The standard out-of-process .NET toolchain, except that the generated runner references
    /// this project by the path recorded at build time: BenchmarkDotNet would search the tree for
    /// a project named like the assembly (PluggableShim.Ttrpc.Bench.csproj), which does not exist.
    /// </summary>
    private sealed class ThisProjectToolchain : Toolchain
    {
        private static readonly IToolchain Standard = CsProjCoreToolchain.NetCoreApp10_0;

        private ThisProjectToolchain()
            : base(Standard.Name, new ProjectGenerator(), Standard.Builder, Standard.Executor)
        {
        }

        public static ThisProjectToolchain Instance { get; } = new();

        public override IEnumerable<ValidationError> Validate(BenchmarkCase benchmarkCase, IResolver resolver) =>
            Standard.Validate(benchmarkCase, resolver);

        private sealed class ProjectGenerator() : CsProjGenerator(
            "net10.0", cliPath: null!, packagesPath: null!, runtimeFrameworkVersion: null!)
        {
            // A binary moved away from its sources falls back to BenchmarkDotNet's own search.
            protected override FileInfo GetProjectFilePath(Type benchmarkTarget, ILogger logger) =>
                ProjectFile is not null && File.Exists(ProjectFile)
                    ? new FileInfo(ProjectFile)
                    : base.GetProjectFilePath(benchmarkTarget, logger);
        }
    }
}
