using BenchmarkDotNet.Running;
using PluggableShim.Ttrpc.Bench;

// `dotnet run -c Release --project bench/Ttrpc.Bench -- --filter '*'` runs everything;
// any other BenchmarkDotNet switch (--list flat, --job, --profiler) works as usual.
BenchmarkSwitcher.FromAssembly(typeof(StateRoundTrip).Assembly).Run(args, BenchConfig.Create());
