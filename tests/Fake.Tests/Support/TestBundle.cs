using System.Text.Json;
using PluggableShim.Abstractions;

namespace PluggableShim.Plugins.Fake.Tests.Support;

/// <summary>A temporary OCI bundle whose config.json runs <c>args</c> with the given annotations.</summary>
internal sealed class TestBundle : IDisposable
{
    private TestBundle(string directory) => Directory = directory;

    public string Directory { get; }

    public static TestBundle Create(
        string[] args,
        IReadOnlyDictionary<string, string>? annotations = null,
        object? resources = null)
    {
        string directory = System.IO.Directory.CreateTempSubdirectory("fake-tests-").FullName;
        var config = new Dictionary<string, object?>
        {
            ["ociVersion"] = "1.0.2",
            ["process"] = new { args, env = new[] { "PATH=/usr/sbin:/usr/bin:/sbin:/bin" }, cwd = "/" },
            ["annotations"] = annotations ?? new Dictionary<string, string>(),
        };
        if (resources is not null)
        {
            config["linux"] = new { resources };
        }

        File.WriteAllText(Path.Combine(directory, "config.json"), JsonSerializer.Serialize(config));
        return new TestBundle(directory);
    }

    public CreateContainerRequest Request(IContainerEvents events, string id = "c1") => new()
    {
        Id = id,
        Namespace = "tests",
        Bundle = Directory,
        Events = events,
    };

    public void Dispose() => System.IO.Directory.Delete(Directory, recursive: true);
}

/// <summary>
/// Records OOM reports, and whether the watched process had already exited, or even been killed, then:
/// an OOM must be reported while its victim still lives, so that its event precedes the exit event.
/// </summary>
internal sealed class RecordingEvents : IContainerEvents
{
    private readonly Lock _gate = new();
    private readonly List<bool> _ooms = []; // guarded by _gate

    /// <summary>Set by a test to the process whose exit must not precede the OOM report.</summary>
    public IRuntimeProcess? Watched { get; set; }

    public int OomCount
    {
        get
        {
            lock (_gate)
            {
                return _ooms.Count;
            }
        }
    }

    public bool ReportedAfterExit
    {
        get
        {
            lock (_gate)
            {
                return _ooms.Any(afterExit => afterExit);
            }
        }
    }

    public void OutOfMemory()
    {
        // A kill sent before this report would have taken effect by the end of this pause; a kill sent after it cannot have.
        Thread.Sleep(200);
        bool late = Watched is { } process && (process.Exited.IsCompleted || !Processes.IsAlive(process.Pid));
        lock (_gate)
        {
            _ooms.Add(late);
        }
    }
}
