using PluggableShim.Abstractions;
using PluggableShim.Plugins.Fake.Internal.Faults;

namespace PluggableShim.Plugins.Fake.Tests.Faults;

public sealed class FaultPlanTests
{
    private const string P = FaultPlan.Prefix;

    private static FaultPlan Parse(params (string Name, string Value)[] annotations) =>
        FaultPlan.Parse(annotations.ToDictionary(a => a.Name, a => a.Value));

    [Fact]
    public void No_fault_annotations_give_the_empty_plan_and_other_annotations_are_ignored()
    {
        FaultPlan plan = Parse(("io.kubernetes.cri.sandbox-id", "x"), ("io.pluggableshim.plugin", "fake"));

        Assert.True(plan.IsEmpty);
        Assert.Equal(ProcessFaults.None, plan.Init);
        Assert.Equal(ProcessFaults.None, plan.ForExec("any"));
    }

    [Fact]
    public void Container_faults_are_read_with_their_values()
    {
        FaultPlan plan = Parse(
            (P + "create-error", "NotFound:no such image"),
            (P + "create-delay", "250ms"),
            (P + "start-error", "failed_precondition"),
            (P + "start-delay", "1m30s"),
            (P + "exit-code", "42"),
            (P + "exit-after", "2s"),
            (P + "oom-after", "1.5s"));

        ProcessFaults init = plan.Init;
        Assert.Equal(new InjectedError(FaultCode.NotFound, "no such image", P + "create-error"), init.CreateError);
        Assert.Equal(TimeSpan.FromMilliseconds(250), init.CreateDelay);
        Assert.Equal(new InjectedError(FaultCode.FailedPrecondition, null, P + "start-error"), init.StartError);
        Assert.Equal(TimeSpan.FromSeconds(90), init.StartDelay);
        Assert.Equal(42, init.ExitCode);
        Assert.Equal(TimeSpan.FromSeconds(2), init.ExitAfter);
        Assert.Equal(TimeSpan.FromSeconds(1.5), init.OomAfter);
        Assert.Equal(ProcessFaults.None, plan.ForExec("e1"));
    }

    [Fact]
    public void A_named_exec_fault_wins_over_the_every_exec_fault_one_fault_at_a_time()
    {
        FaultPlan plan = Parse(
            (P + "exec.create-error", "Unimplemented"),
            (P + "exec.exit-code", "3"),
            (P + "exec.probe.v1.create-error", "AlreadyExists:taken"));

        ProcessFaults probe = plan.ForExec("probe.v1");
        Assert.Equal(FaultCode.AlreadyExists, probe.CreateError?.Code);
        Assert.Equal("taken", probe.CreateError?.Message);
        Assert.Equal(3, probe.ExitCode);

        ProcessFaults other = plan.ForExec("other");
        Assert.Equal(FaultCode.Unimplemented, other.CreateError?.Code);
        Assert.Equal(3, other.ExitCode);
        Assert.Equal(ProcessFaults.None, plan.Init);
    }

    [Theory]
    [InlineData("NotFound", "NotFound")]
    [InlineData("NOT_FOUND", "NotFound")]
    [InlineData("alreadyexists", "AlreadyExists")]
    [InlineData("9", "FailedPrecondition")]
    [InlineData("InvalidArgument", "InvalidArgument")]
    [InlineData("UNIMPLEMENTED", "Unimplemented")]
    [InlineData("unknown", "Unknown")]
    public void Codes_are_read_by_name_in_any_case_or_by_number(string code, string expected) =>
        Assert.Equal(Enum.Parse<FaultCode>(expected), Parse((P + "start-error", code)).Init.StartError?.Code);

    [Fact]
    public void The_message_is_everything_after_the_first_colon()
    {
        InjectedError? error = Parse((P + "start-error", "Unknown:a: b :c")).Init.StartError;

        Assert.Equal("a: b :c", error?.Message);
    }

    [Theory]
    [InlineData("create-error", "Internal:boom", "\"Internal\" is not a status code")]
    [InlineData("create-error", "", "\"\" is not a status code")]
    [InlineData("start-error", "42", "\"42\" is not a status code")]
    [InlineData("create-delay", "5", "needs a unit")]
    [InlineData("start-delay", "5 parsecs", "must be a number followed by a unit")]
    [InlineData("exit-after", "3d", "unknown unit \"d\"")]
    [InlineData("oom-after", "2h", "longer than the 60 minutes allowed")]
    [InlineData("exit-code", "256", "is not an exit code (0 to 255)")]
    [InlineData("exit-code", "-1", "is not an exit code")]
    [InlineData("exec.x.exit-code", "nope", "is not an exit code")]
    public void A_bad_value_is_InvalidArgument_naming_the_annotation(string fault, string value, string why)
    {
        var ex = Assert.Throws<InvalidArgumentException>(() => Parse((P + fault, value)));

        Assert.StartsWith($"annotation {P}{fault}: ", ex.Message, StringComparison.Ordinal);
        Assert.Contains(why, ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("fail-create")]
    [InlineData("exec.start-eror")]
    [InlineData("exec.probe.delay")]
    public void An_unknown_fault_name_is_InvalidArgument_listing_the_known_ones(string fault)
    {
        var ex = Assert.Throws<InvalidArgumentException>(() => Parse((P + fault, "1s")));

        Assert.Contains($"annotation {P}{fault} is not a Fake plugin fault", ex.Message, StringComparison.Ordinal);
        Assert.Contains("create-error, create-delay, start-error", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("exec..exit-code")]
    [InlineData("exec.bad/id.exit-code")]
    [InlineData("exec.-x.exit-code")]
    public void An_exec_id_containerd_would_refuse_is_InvalidArgument(string fault)
    {
        var ex = Assert.Throws<InvalidArgumentException>(() => Parse((P + fault, "1")));

        Assert.Contains("is not a valid exec id", ex.Message, StringComparison.Ordinal);
    }
}
