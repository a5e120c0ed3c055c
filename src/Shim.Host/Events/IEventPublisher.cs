using Google.Protobuf;

namespace PluggableShim.Host.Events;

/// <summary>Publishes task events to containerd, in the order they are handed in.</summary>
internal interface IEventPublisher
{
    /// <summary>Queues an event; it is sent after every event queued before it.</summary>
    void Publish(string topic, IMessage @event);

    /// <summary>Sends what is queued, waiting at most <paramref name="timeout"/>; later events are refused.</summary>
    Task FlushAsync(TimeSpan timeout);
}
