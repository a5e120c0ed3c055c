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
/// three warm-up and ten measured iterations of about half a second each.
/// </summary>
internal static class BenchConfig
{
    public static IConfig Create() => DefaultConfig.Instance
        .AddJob(Job.Default
            .WithId("Short10")
            .WithLaunchCount(1)
            .WithWarmupCount(3)
            .WithIterationCount(10)
            .WithToolchain(ThisProjectToolchain.Instance))
        .AddColumn(StatisticColumn.OperationsPerSecond);

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
            protected override FileInfo GetProjectFilePath(Type benchmarkTarget, ILogger logger)
            {
                string? path = benchmarkTarget.Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
                    .FirstOrDefault(a => a.Key == "BenchProjectFile")?.Value;
                return path is not null && File.Exists(path)
                    ? new FileInfo(path)
                    : base.GetProjectFilePath(benchmarkTarget, logger);
            }
        }
    }
}
