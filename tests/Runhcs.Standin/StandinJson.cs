using System.Text.Json.Serialization;

namespace PluggableShim.Runhcs.Standin;

[JsonSerializable(typeof(Dictionary<string, object>))]
[JsonSerializable(typeof(List<int>))]
[JsonSerializable(typeof(string))]
[JsonSerializable(typeof(int))]
[JsonSerializable(typeof(bool))]
internal sealed partial class StandinJson : JsonSerializerContext;
