using Checkpointing.Contracts;
using Microsoft.Extensions.Logging.Abstractions;

namespace Checkpointing.Grains.Tests;

/// <summary>The order of a run's calls to its tenant's accounting, with a tenant whose reports can fail.</summary>
public sealed class AccountingChannelTests
{
    [Fact]
    public async Task A_release_left_owed_by_a_failed_report_is_dropped_once_a_new_grant_replaces_the_old_one()
    {
        var tenant = new RecordingTenant { FailReports = true };
        var channel = new AccountingChannel();
        var retained = 100L;

        channel.ReleaseSoon(tenant, "r", () => retained, NullLogger.Instance); // the grant's lease ended; telling the tenant fails
        await tenant.Settled();
        Assert.Equal([("report", 100L, true)], tenant.Calls);
        Assert.True(channel.ReportDue(retained));

        tenant.FailReports = false;
        await channel.Reserve(tenant, "r", 150);
        retained = 150;
        channel.ReportSoon(tenant, "r", () => retained, NullLogger.Instance);
        await tenant.Settled();

        // Releasing now would remove the grant just given: the tenant would count the run below what it may commit.
        Assert.Equal([("report", 100L, true), ("reserve", 150L, false), ("report", 150L, false)], tenant.Calls);
        Assert.False(channel.ReportDue(retained));
    }

    [Fact]
    public async Task A_release_whose_report_failed_is_sent_with_the_next_report_when_no_grant_replaced_it()
    {
        var tenant = new RecordingTenant { FailReports = true };
        var channel = new AccountingChannel();

        channel.ReleaseSoon(tenant, "r", () => 100, NullLogger.Instance);
        await tenant.Settled();
        tenant.FailReports = false;
        channel.ReportSoon(tenant, "r", () => 80, NullLogger.Instance);
        await tenant.Settled();

        Assert.Equal([("report", 100L, true), ("report", 80L, true)], tenant.Calls);
    }

    /// <summary>A tenant's accounting that records what it was told, in order.</summary>
    private sealed class RecordingTenant : ITenantAccounting
    {
        private readonly List<Task> _calls = [];

        public bool FailReports { get; set; }

        public List<(string Call, long Bytes, bool Release)> Calls { get; } = [];

        public Task Settled() => Task.WhenAll(_calls.ToList()).ContinueWith(_ => { }, TaskScheduler.Default);

        public Task RegisterRun(string run) => Task.CompletedTask;

        public Task UnregisterRun(string run) => Task.CompletedTask;

        public Task<RetainedBytesGrant> Reserve(string run, long retainedBytes)
        {
            Calls.Add(("reserve", retainedBytes, false));
            return Task.FromResult(new RetainedBytesGrant(retainedBytes * 2, TimeSpan.FromMinutes(1)));
        }

        public Task Report(string run, long retainedBytes, bool releaseGrant)
        {
            Calls.Add(("report", retainedBytes, releaseGrant));
            var call = FailReports ? Task.FromException(new TimeoutException("the tenant did not answer")) : Task.CompletedTask;
            _calls.Add(call);
            return call;
        }
    }
}
