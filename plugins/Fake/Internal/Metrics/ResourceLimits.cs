using System.Text.Json;
using PluggableShim.Abstractions;

namespace PluggableShim.Plugins.Fake.Internal.Metrics;

/// <summary>
/// The parts of an OCI <c>LinuxResources</c> the Fake plugin records (it enforces none of them):
/// from the bundle's <c>linux.resources</c> at Create, then from each Update. Null means "not set".
/// </summary>
internal sealed record ResourceLimits
{
    public const string LinuxResourcesType = "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources";

    public static readonly ResourceLimits None = new();

    public long? MemoryLimit { get; init; }

    public long? MemoryReservation { get; init; }

    /// <summary>OCI's memory+swap total, as runc takes it.</summary>
    public long? MemorySwap { get; init; }

    public ulong? CpuShares { get; init; }

    public long? CpuQuota { get; init; }

    public ulong? CpuPeriod { get; init; }

    public string? Cpus { get; init; }

    public string? Mems { get; init; }

    public long? PidsLimit { get; init; }

    /// <summary>These limits with every value <paramref name="update"/> sets replacing the old one, as runc's update does.</summary>
    public ResourceLimits With(ResourceLimits update) => new()
    {
        MemoryLimit = update.MemoryLimit ?? MemoryLimit,
        MemoryReservation = update.MemoryReservation ?? MemoryReservation,
        MemorySwap = update.MemorySwap ?? MemorySwap,
        CpuShares = update.CpuShares ?? CpuShares,
        CpuQuota = update.CpuQuota ?? CpuQuota,
        CpuPeriod = update.CpuPeriod ?? CpuPeriod,
        Cpus = update.Cpus ?? Cpus,
        Mems = update.Mems ?? Mems,
        PidsLimit = update.PidsLimit ?? PidsLimit,
    };

    /// <summary>Reads an Update's resources: LinuxResources JSON under its containerd type URL.</summary>
    /// <exception cref="InvalidArgumentException">Another type, or JSON that is not LinuxResources.</exception>
    public static ResourceLimits FromPayload(TypedPayload resources)
    {
        ArgumentNullException.ThrowIfNull(resources);
        if (resources.TypeUrl != LinuxResourcesType)
        {
            throw new InvalidArgumentException(
                $"update resources have type \"{resources.TypeUrl}\"; the Fake plugin takes {LinuxResourcesType}");
        }

        try
        {
            using JsonDocument document = JsonDocument.Parse(resources.Value);
            return Parse(document.RootElement, "update resources");
        }
        catch (JsonException ex)
        {
            throw new InvalidArgumentException($"update resources are not valid JSON: {ex.Message}", ex);
        }
    }

    /// <summary>Reads a <c>LinuxResources</c> object; <paramref name="where"/> names it in errors.</summary>
    public static ResourceLimits Parse(JsonElement resources, string where)
    {
        if (resources.ValueKind == JsonValueKind.Null)
        {
            return None;
        }

        if (resources.ValueKind != JsonValueKind.Object)
        {
            throw new InvalidArgumentException($"{where} must be a LinuxResources JSON object");
        }

        JsonElement memory = Section(resources, "memory", where);
        JsonElement cpu = Section(resources, "cpu", where);
        JsonElement pids = Section(resources, "pids", where);
        return new ResourceLimits
        {
            MemoryLimit = Int64(memory, "limit", where),
            MemoryReservation = Int64(memory, "reservation", where),
            MemorySwap = Int64(memory, "swap", where),
            CpuShares = UInt64(cpu, "shares", where),
            CpuQuota = Int64(cpu, "quota", where),
            CpuPeriod = UInt64(cpu, "period", where),
            Cpus = String(cpu, "cpus", where),
            Mems = String(cpu, "mems", where),
            PidsLimit = Int64(pids, "limit", where),
        };
    }

    private static JsonElement Section(JsonElement parent, string name, string where)
    {
        if (!parent.TryGetProperty(name, out JsonElement section) || section.ValueKind == JsonValueKind.Null)
        {
            return default;
        }

        return section.ValueKind == JsonValueKind.Object
            ? section
            : throw new InvalidArgumentException($"{where}: {name} must be an object");
    }

    private static bool TryValue(JsonElement section, string name, out JsonElement value)
    {
        value = default;
        return section.ValueKind == JsonValueKind.Object
            && section.TryGetProperty(name, out value)
            && value.ValueKind != JsonValueKind.Null;
    }

    private static long? Int64(JsonElement section, string name, string where) =>
        !TryValue(section, name, out JsonElement value) ? null
        : value.ValueKind == JsonValueKind.Number && value.TryGetInt64(out long number) ? number
        : throw new InvalidArgumentException($"{where}: {name} must be a 64-bit integer, not {value.GetRawText()}");

    private static ulong? UInt64(JsonElement section, string name, string where) =>
        !TryValue(section, name, out JsonElement value) ? null
        : value.ValueKind == JsonValueKind.Number && value.TryGetUInt64(out ulong number) ? number
        : throw new InvalidArgumentException($"{where}: {name} must be an unsigned 64-bit integer, not {value.GetRawText()}");

    private static string? String(JsonElement section, string name, string where) =>
        !TryValue(section, name, out JsonElement value) ? null
        : value.ValueKind == JsonValueKind.String ? value.GetString()
        : throw new InvalidArgumentException($"{where}: {name} must be a string, not {value.GetRawText()}");
}
