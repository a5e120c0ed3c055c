using System.Diagnostics;
using System.Text.Json;

namespace PluggableShim.Testing.Containerd;

/// <summary>One event as <c>ctr events</c> printed it.</summary>
public sealed record RecordedEvent(string Namespace, string Topic, JsonElement Body)
{
    /// <summary>The event's container id (task events), or its id (container events).</summary>
    public string? ContainerId =>
        Body.ValueKind == JsonValueKind.Object
        && (Body.TryGetProperty("container_id", out JsonElement id) || Body.TryGetProperty("id", out id))
            ? id.GetString()
            : null;

    public string? Property(string name) =>
        Body.ValueKind == JsonValueKind.Object && Body.TryGetProperty(name, out JsonElement value)
            ? value.ToString()
            : null;
}

/// <summary>
/// Follows <c>ctr events</c> for the whole life of a containerd, so that tests see exactly what
/// containerd received from the shim, in containerd's order.
/// </summary>
public sealed class EventRecorder : IDisposable
{
    private readonly Process _process;
    private readonly Lock _gate = new();
    private readonly List<RecordedEvent> _events = []; // guarded by _gate
    private readonly TaskCompletionSource _subscribed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private EventRecorder(Process process) => _process = process;

    public static EventRecorder Start(string address)
    {
        var info = new ProcessStartInfo("ctr")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string argument in new[] { "--address", address, "events" })
        {
            info.ArgumentList.Add(argument);
        }

        var recorder = new EventRecorder(Process.Start(info) ?? throw new InvalidOperationException("cannot start ctr events"));
        recorder._process.OutputDataReceived += (_, line) => recorder.OnLine(line.Data);
        recorder._process.ErrorDataReceived += (_, _) => { };
        recorder._process.BeginOutputReadLine();
        recorder._process.BeginErrorReadLine();
        return recorder;
    }

    /// <summary>A snapshot of the events so far.</summary>
    public IReadOnlyList<RecordedEvent> All
    {
        get
        {
            lock (_gate)
            {
                return [.. _events];
            }
        }
    }

    /// <summary>Events of one namespace about one container, in order.</summary>
    public IReadOnlyList<RecordedEvent> For(string ns, string containerId) =>
        [.. All.Where(e => e.Namespace == ns && e.ContainerId == containerId)];

    /// <summary>Waits until an event matches, or fails with what was seen.</summary>
    public async Task<RecordedEvent> WaitForAsync(
        Func<RecordedEvent, bool> match, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        DateTime deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            RecordedEvent? found = All.FirstOrDefault(match);
            if (found is not null)
            {
                return found;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException(
                    "no matching event; seen:\n" + string.Join('\n', All.Select(e => $"{e.Namespace} {e.Topic} {e.Body}")));
            }

            await Task.Delay(50, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Completes once ctr is subscribed (it printed a first event or a probe was seen).</summary>
    public Task Subscribed => _subscribed.Task;

    public void Dispose()
    {
        try
        {
            _process.Kill();
            _process.WaitForExit(5000);
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }

        _process.Dispose();
    }

    // A line reads: DATE TIME ZONE-OFFSET ZONE NAMESPACE TOPIC JSON
    private void OnLine(string? line)
    {
        if (string.IsNullOrWhiteSpace(line))
        {
            return;
        }

        string[] parts = line.Split(' ', 7);
        if (parts.Length < 6 || !parts[5].StartsWith('/'))
        {
            return;
        }

        JsonElement body = default;
        if (parts.Length == 7)
        {
            try
            {
                using var document = JsonDocument.Parse(parts[6]);
                body = document.RootElement.Clone();
            }
            catch (JsonException)
            {
                body = JsonDocument.Parse(JsonSerializer.Serialize(parts[6])).RootElement.Clone();
            }
        }

        lock (_gate)
        {
            _events.Add(new RecordedEvent(parts[4], parts[5], body));
        }

        _subscribed.TrySetResult();
    }
}
