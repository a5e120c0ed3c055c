namespace PluggableShim.Host.Events;

/// <summary>The task event topics containerd knows.</summary>
internal static class EventTopics
{
    public const string Create = "/tasks/create";
    public const string Start = "/tasks/start";
    public const string Exit = "/tasks/exit";
    public const string Delete = "/tasks/delete";
    public const string Oom = "/tasks/oom";
    public const string ExecAdded = "/tasks/exec-added";
    public const string ExecStarted = "/tasks/exec-started";
    public const string Paused = "/tasks/paused";
    public const string Resumed = "/tasks/resumed";
    public const string Checkpointed = "/tasks/checkpointed";
}
