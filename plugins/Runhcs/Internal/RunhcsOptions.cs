using System.Text;
using PluggableShim.Abstractions;

namespace PluggableShim.Plugins.Runhcs.Internal;

/// <summary>
/// The fields of <c>containerd.runhcs.v1.Options</c> this plugin honours, decoded by hand: the
/// plugin shares no protobuf runtime with the host, and six fields do not need one.
/// </summary>
/// <remarks>
/// Honoured: debug (1), debug_type (2), registry_root (3), sandbox_isolation (6), log_level (16),
/// default_container_annotations (18). Every other field is read past and ignored: they configure
/// hcsshim's own shim (utility VM sizing, scratch sizes, ncproxy), which runhcs.exe does not take.
/// </remarks>
internal sealed record RunhcsOptions
{
    public const string TypeName = "containerd.runhcs.v1.Options";

    public static RunhcsOptions Default { get; } = new();

    public bool Debug { get; init; }

    public DebugType DebugType { get; init; } = DebugType.NamedPipe;

    public string RegistryRoot { get; init; } = string.Empty;

    public bool HyperVIsolation { get; init; }

    public string LogLevel { get; init; } = string.Empty;

    public IReadOnlyDictionary<string, string> DefaultContainerAnnotations { get; init; } =
        new Dictionary<string, string>(StringComparer.Ordinal);

    /// <summary>True for <c>containerd.runhcs.v1.Options</c>, bare (containerd's form) or with a URL prefix.</summary>
    public static bool IsRunhcsType(string typeUrl) =>
        typeUrl == TypeName || typeUrl.EndsWith("/" + TypeName, StringComparison.Ordinal);

    /// <summary>
    /// The options in <paramref name="payload"/> if it is a runhcs Options message; the defaults for
    /// none or another type (such as <c>runtimeoptions.v1.Options</c>, which only selects a config).
    /// </summary>
    public static RunhcsOptions From(TypedPayload? payload)
    {
        if (payload is null || !IsRunhcsType(payload.TypeUrl))
        {
            return Default;
        }

        try
        {
            return Decode(payload.Value.Span);
        }
        catch (FormatException ex)
        {
            throw new InvalidArgumentException($"{TypeName} in the runtime options does not decode: {ex.Message}", ex);
        }
    }

    private static RunhcsOptions Decode(ReadOnlySpan<byte> data)
    {
        var options = new RunhcsOptions();
        var annotations = new Dictionary<string, string>(StringComparer.Ordinal);
        var reader = new ProtoReader(data);
        while (reader.Next(out int field, out int wireType))
        {
            switch (field, wireType)
            {
                case (1, 0):
                    options = options with { Debug = reader.Varint() != 0 };
                    break;
                case (2, 0):
                    options = options with { DebugType = (DebugType)(int)reader.Varint() };
                    break;
                case (3, 2):
                    options = options with { RegistryRoot = reader.String() };
                    break;
                case (6, 0):
                    options = options with { HyperVIsolation = reader.Varint() == 1 };
                    break;
                case (16, 2):
                    options = options with { LogLevel = reader.String() };
                    break;
                case (18, 2):
                    (string key, string value) = MapEntry(reader.Bytes());
                    annotations[key] = value;
                    break;
                default:
                    reader.Skip(wireType);
                    break;
            }
        }

        return options with { DefaultContainerAnnotations = annotations };
    }

    private static (string Key, string Value) MapEntry(ReadOnlySpan<byte> entry)
    {
        string key = string.Empty;
        string value = string.Empty;
        var reader = new ProtoReader(entry);
        while (reader.Next(out int field, out int wireType))
        {
            switch (field, wireType)
            {
                case (1, 2):
                    key = reader.String();
                    break;
                case (2, 2):
                    value = reader.String();
                    break;
                default:
                    reader.Skip(wireType);
                    break;
            }
        }

        return (key, value);
    }

    /// <summary>Just enough of the protobuf wire format to read scalar, string and nested fields.</summary>
    private ref struct ProtoReader(ReadOnlySpan<byte> data)
    {
        private readonly ReadOnlySpan<byte> _data = data;
        private int _position;

        public bool Next(out int field, out int wireType)
        {
            if (_position >= _data.Length)
            {
                field = wireType = 0;
                return false;
            }

            ulong tag = Varint();
            field = (int)(tag >> 3);
            wireType = (int)(tag & 7);
            if (field <= 0)
            {
                throw new FormatException($"invalid field number at offset {_position}");
            }

            return true;
        }

        public ulong Varint()
        {
            ulong value = 0;
            for (int shift = 0; shift < 64; shift += 7)
            {
                if (_position >= _data.Length)
                {
                    throw new FormatException("truncated varint");
                }

                byte b = _data[_position++];
                value |= (ulong)(b & 0x7F) << shift;
                if ((b & 0x80) == 0)
                {
                    return value;
                }
            }

            throw new FormatException("varint longer than 10 bytes");
        }

        public ReadOnlySpan<byte> Bytes()
        {
            ulong length = Varint();
            if (length > (ulong)(_data.Length - _position))
            {
                throw new FormatException("length-delimited field runs past the end");
            }

            ReadOnlySpan<byte> bytes = _data.Slice(_position, (int)length);
            _position += (int)length;
            return bytes;
        }

        public string String() => Encoding.UTF8.GetString(Bytes());

        public void Skip(int wireType)
        {
            switch (wireType)
            {
                case 0:
                    Varint();
                    break;
                case 1:
                    Advance(8);
                    break;
                case 2:
                    Bytes();
                    break;
                case 5:
                    Advance(4);
                    break;
                default:
                    throw new FormatException($"unsupported wire type {wireType}");
            }
        }

        private void Advance(int count)
        {
            if (_data.Length - _position < count)
            {
                throw new FormatException("fixed-width field runs past the end");
            }

            _position += count;
        }
    }
}

/// <summary>Where runhcs's debug logs go (containerd.runhcs.v1.Options.DebugType).</summary>
internal enum DebugType
{
    /// <summary>Named pipes the plugin serves, re-emitted through the shim's log.</summary>
    NamedPipe = 0,

    /// <summary>Files in the bundle (runhcs.log, runhcs-shim.log, runhcs-vm.log).</summary>
    File = 1,

    /// <summary>ETW only: runhcs logs there by itself, nothing is forwarded.</summary>
    Etw = 2,
}
