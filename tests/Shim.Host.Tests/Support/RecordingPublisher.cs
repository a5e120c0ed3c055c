using Google.Protobuf;
using PluggableShim.Host.Events;

namespace PluggableShim.Host.Tests.Support;

/// <summary>Keeps published events in order, and lets tests wait for one.</summary>
internal sealed class RecordingPublisher : IEventPublisher
{
    private readonly List<(string Topic, IMessage Event)> _events = [];
    private readonly SemaphoreSlim _published = new(0);

    public IReadOnlyList<(string Topic, IMessage Event)> Events
    {
        get
        {
            lock (_events)
            {
                return [.. _events];
            }
        }
    }

    public IReadOnlyList<string> Topics => [.. Events.Select(e => e.Topic)];

    public void Publish(string topic, IMessage @event)
    {
        lock (_events)
        {
            _events.Add((topic, @event));
        }

        _published.Release();
    }

    public Task FlushAsync(TimeSpan timeout) => Task.CompletedTask;

    public async Task WaitForAsync(string topic, int count = 1)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        while (Events.Count(e => e.Topic == topic) < count)
        {
            await _published.WaitAsync(timeout.Token);
        }
    }
}
