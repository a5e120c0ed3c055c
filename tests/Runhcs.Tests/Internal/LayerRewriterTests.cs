using System.Text.Json.Nodes;
using PluggableShim.Abstractions;
using PluggableShim.Plugins.Runhcs.Internal;

namespace PluggableShim.Runhcs.Tests.Internal;

public sealed class LayerRewriterTests : IDisposable
{
    private readonly string _bundle = Directory.CreateTempSubdirectory("rh-rewrite-").FullName;

    private string ConfigPath => Path.Combine(_bundle, "config.json");

    public void Dispose() => Directory.Delete(_bundle, recursive: true);

    private static MountSpec Layer(string type, string scratch, params string[] parents) =>
        new(type, scratch, string.Empty, [$"parentLayerPaths={new JsonArray([.. parents.Select(p => (JsonNode)p)]).ToJsonString()}"]);

    private void WriteSpec(string json) => File.WriteAllText(ConfigPath, json);

    private JsonObject ReadSpec() => (JsonObject)JsonNode.Parse(File.ReadAllText(ConfigPath))!;

    private static string[] Layers(JsonObject spec) =>
        [.. spec["windows"]!["layerFolders"]!.AsArray().Select(n => n!.GetValue<string>())];

    [Fact]
    public void Windows_layer_gives_parents_in_the_given_order_then_the_scratch()
    {
        WriteSpec("""{"ociVersion":"1.0.2","process":{"args":["cmd"]},"windows":{"network":{"allowUnqualifiedDNSQuery":true}}}""");

        LayerRewriter.Result result = LayerRewriter.Rewrite(_bundle,
            [Layer("windows-layer", @"C:\s\scratch", @"C:\s\top", @"C:\s\middle", @"C:\s\base")], RunhcsOptions.Default);

        JsonObject spec = ReadSpec();
        Assert.Equal([@"C:\s\top", @"C:\s\middle", @"C:\s\base", @"C:\s\scratch"], Layers(spec));
        Assert.True(result.Changed);
        Assert.False(result.Lcow);
        Assert.Null(spec["windows"]!["hyperv"]);
        Assert.True(spec["windows"]!["network"]!["allowUnqualifiedDNSQuery"]!.GetValue<bool>()); // the rest is kept
    }

    [Fact]
    public void Lcow_layer_keeps_the_given_order_and_gets_a_hyperv_section()
    {
        WriteSpec("""{"ociVersion":"1.0.2","process":{"args":["sh"]},"linux":{"namespaces":[]}}""");

        LayerRewriter.Result result = LayerRewriter.Rewrite(_bundle,
            [Layer("lcow-layer", "/l/scratch", "/l/top", "/l/base")], RunhcsOptions.Default);

        JsonObject spec = ReadSpec();
        Assert.Equal(["/l/top", "/l/base", "/l/scratch"], Layers(spec));
        Assert.True(result.Lcow);
        Assert.IsType<JsonObject>(spec["windows"]!["hyperv"]);
    }

    [Fact]
    public void A_spec_without_a_windows_section_gets_one()
    {
        WriteSpec("""{"ociVersion":"1.0.2","process":{"args":["cmd"]}}""");

        LayerRewriter.Rewrite(_bundle, [Layer("windows-layer", "scratch", "base")], RunhcsOptions.Default);

        Assert.Equal(["base", "scratch"], Layers(ReadSpec()));
    }

    [Fact]
    public void A_retried_create_does_not_add_layers_twice_and_writes_nothing()
    {
        WriteSpec("""{"process":{"args":["cmd"]}}""");
        MountSpec[] mounts = [Layer("windows-layer", "scratch", "top", "base")];
        LayerRewriter.Rewrite(_bundle, mounts, RunhcsOptions.Default);
        byte[] afterFirst = File.ReadAllBytes(ConfigPath);
        DateTime written = File.GetLastWriteTimeUtc(ConfigPath);

        LayerRewriter.Result second = LayerRewriter.Rewrite(_bundle, mounts, RunhcsOptions.Default);

        Assert.False(second.Changed);
        Assert.Equal(afterFirst, File.ReadAllBytes(ConfigPath));
        Assert.Equal(written, File.GetLastWriteTimeUtc(ConfigPath));
        Assert.Equal(["top", "base", "scratch"], Layers(ReadSpec()));
    }

    [Fact]
    public void Layers_already_in_the_spec_are_replaced_not_appended_to()
    {
        WriteSpec("""{"process":{"args":["cmd"]},"windows":{"layerFolders":["old-base","old-scratch"]}}""");

        LayerRewriter.Rewrite(_bundle, [Layer("windows-layer", "scratch", "base")], RunhcsOptions.Default);

        Assert.Equal(["base", "scratch"], Layers(ReadSpec()));
    }

    [Fact]
    public void No_mount_is_accepted_when_the_spec_names_its_layers_and_the_file_is_untouched()
    {
        const string json = """{"process":{"args":["cmd"]},"windows":{"layerFolders":["base","scratch"]}}""";
        WriteSpec(json);

        LayerRewriter.Result result = LayerRewriter.Rewrite(_bundle, [], RunhcsOptions.Default);

        Assert.False(result.Changed);
        Assert.Equal(json, File.ReadAllText(ConfigPath));
    }

    [Fact]
    public void Hyperv_isolation_from_the_options_adds_a_hyperv_section_to_a_windows_container()
    {
        WriteSpec("""{"process":{"args":["cmd"]}}""");

        LayerRewriter.Rewrite(_bundle, [Layer("windows-layer", "scratch", "base")],
            RunhcsOptions.Default with { HyperVIsolation = true });

        Assert.IsType<JsonObject>(ReadSpec()["windows"]!["hyperv"]);
    }

    [Fact]
    public void Default_annotations_are_added_without_overriding_the_containers_own()
    {
        WriteSpec("""{"process":{"args":["cmd"]},"annotations":{"a":"mine"}}""");
        var options = RunhcsOptions.Default with
        {
            DefaultContainerAnnotations = new Dictionary<string, string> { ["a"] = "default", ["b"] = "default" },
        };

        LayerRewriter.Rewrite(_bundle, [Layer("windows-layer", "scratch", "base")], options);

        JsonObject annotations = ReadSpec()["annotations"]!.AsObject();
        Assert.Equal("mine", annotations["a"]!.GetValue<string>());
        Assert.Equal("default", annotations["b"]!.GetValue<string>());
    }

    public static TheoryData<string, string[], string> BadMounts => new()
    {
        { "none", [], "no rootfs mount" },
        { "two", ["windows-layer", "windows-layer"], "exactly one rootfs mount" },
        { "overlay", ["overlay"], "\"overlay\"" },
    };

    [Theory]
    [MemberData(nameof(BadMounts))]
    public void Bad_mounts_are_invalid_arguments_that_name_the_problem_and_leave_the_file_as_it_was(
        string name, string[] types, string expected)
    {
        _ = name;
        const string json = """{ "process": {"args":["cmd"]} }""";
        WriteSpec(json);

        var ex = Assert.Throws<InvalidArgumentException>(() => LayerRewriter.Rewrite(_bundle,
            [.. types.Select(t => Layer(t, "scratch", "base"))], RunhcsOptions.Default));

        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
        Assert.Equal(json, File.ReadAllText(ConfigPath));
        Assert.Single(Directory.GetFiles(_bundle)); // no temporary file left behind
    }

    public static TheoryData<string[], string> BadOptions => new()
    {
        { [], "no parentLayerPaths=" },
        { ["parentLayerPaths=not json"], "not JSON" },
        { ["parentLayerPaths={\"a\":1}"], "JSON array" },
        { ["parentLayerPaths=[1]"], "non-empty strings" },
        { ["parentLayerPaths=[\"\"]"], "non-empty strings" },
        { ["parentLayerPaths=[]"], "is empty" },
        { ["parentLayerPaths=[\"a\"]", "parentLayerPaths=[\"b\"]"], "2 parentLayerPaths=" },
        { ["parentLayerPaths=[\"scratch\"]"], "among its parents" },
    };

    [Theory]
    [MemberData(nameof(BadOptions))]
    public void Bad_parent_layer_options_are_invalid_arguments(string[] options, string expected)
    {
        const string json = """{"process":{"args":["cmd"]}}""";
        WriteSpec(json);

        var ex = Assert.Throws<InvalidArgumentException>(() => LayerRewriter.Rewrite(_bundle,
            [new MountSpec("windows-layer", "scratch", string.Empty, options)], RunhcsOptions.Default));

        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
        Assert.Equal(json, File.ReadAllText(ConfigPath));
    }

    [Fact]
    public void A_mount_without_a_source_is_invalid()
    {
        WriteSpec("""{"process":{"args":["cmd"]}}""");

        var ex = Assert.Throws<InvalidArgumentException>(() =>
            LayerRewriter.Rewrite(_bundle, [Layer("lcow-layer", " ", "base")], RunhcsOptions.Default));

        Assert.Contains("no source", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("{not json", "not valid JSON")]
    [InlineData("[1,2]", "JSON object")]
    [InlineData("""{"windows":"yes"}""", "\"windows\" must be an object")]
    [InlineData("""{"windows":{"hyperv":"yes"},"linux":{}}""", "windows.hyperv must be an object")]
    public void A_config_that_cannot_be_rewritten_is_left_byte_identical(string json, string expected)
    {
        WriteSpec(json);
        byte[] before = File.ReadAllBytes(ConfigPath);

        var ex = Assert.Throws<InvalidArgumentException>(() =>
            LayerRewriter.Rewrite(_bundle, [Layer("windows-layer", "scratch", "base")], RunhcsOptions.Default));

        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
        Assert.Equal(before, File.ReadAllBytes(ConfigPath));
        Assert.Single(Directory.GetFiles(_bundle));
    }

    [Fact]
    public void A_bundle_without_config_json_is_invalid()
    {
        var ex = Assert.Throws<InvalidArgumentException>(() =>
            LayerRewriter.Rewrite(_bundle, [Layer("windows-layer", "scratch", "base")], RunhcsOptions.Default));

        Assert.Contains("no config.json", ex.Message, StringComparison.Ordinal);
    }
}
