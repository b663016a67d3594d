// The /metrics page's parts without a server: the exposition format's
// escaping and numbers, histograms from per-bucket counts, the stats
// area's sums across handler rows, the export prefixes and their cap on a
// real table, the local calls of attached handles (detached, and dead and
// recovered), and process_* from a made-up /proc tree.
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/metrics_exposition.h"
#include "server/metrics_page.h"
#include "server/process_metrics.h"
#include "shared/layout.h"
#include "shared/stats_area.h"
#include "tests/shared/table_fixture.h"

namespace countersd {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(EscapeLabelValue, EscapesBackslashQuoteAndNewlineOnly) {
  EXPECT_EQ(EscapeLabelValue("plain/key:1"), "plain/key:1");
  EXPECT_EQ(EscapeLabelValue("a\\b"), "a\\\\b");
  EXPECT_EQ(EscapeLabelValue("say \"hi\""), "say \\\"hi\\\"");
  EXPECT_EQ(EscapeLabelValue("two\nlines"), "two\\nlines");
  EXPECT_EQ(EscapeLabelValue("tab\tand é"), "tab\tand é");  // UTF-8 passes through
  EXPECT_EQ(EscapeLabelValue("\\\"\n"), "\\\\\\\"\\n");
}

TEST(FormatSampleValue, IntegersExactlyOthersShortestAndInfinities) {
  EXPECT_EQ(FormatSampleValue(0), "0");
  EXPECT_EQ(FormatSampleValue(-42), "-42");
  EXPECT_EQ(FormatSampleValue(1e15), "1000000000000000");
  EXPECT_EQ(FormatSampleValue(0.25), "0.25");
  EXPECT_EQ(FormatSampleValue(1.0 / 0.0), "+Inf");
  EXPECT_EQ(FormatSampleValue(-1.0 / 0.0), "-Inf");
}

TEST(ExpositionWriter, FamilyLinesAndEscapedLabels) {
  ExpositionWriter w;
  w.Family("x_total", "counter", "Help with a \\ and a\nnewline.");
  w.Sample("x_total", {{"key", "a\"b"}, {"code", "OK"}}, 3);
  w.Sample("x_total", {}, 4);
  EXPECT_EQ(w.text(),
            "# HELP x_total Help with a \\\\ and a\\nnewline.\n"
            "# TYPE x_total counter\n"
            "x_total{key=\"a\\\"b\",code=\"OK\"} 3\n"
            "x_total 4\n");
}

TEST(ExpositionWriter, HistogramBucketsAreCumulativeAndEndAtInf) {
  ExpositionWriter w;
  const double bounds[] = {0.1, 1};
  const uint64_t counts[] = {2, 0, 5};
  w.Histogram("d", {{"method", "Get"}}, bounds, counts, 7.5);
  EXPECT_EQ(w.text(),
            "d_bucket{method=\"Get\",le=\"0.1\"} 2\n"
            "d_bucket{method=\"Get\",le=\"1\"} 2\n"
            "d_bucket{method=\"Get\",le=\"+Inf\"} 7\n"
            "d_sum{method=\"Get\"} 7.5\n"
            "d_count{method=\"Get\"} 7\n");
}

TEST(StatsArea, LatencyBucketsFollowTheBounds) {
  EXPECT_EQ(StatsArea::LatencyBucket(0), 0);
  EXPECT_EQ(StatsArea::LatencyBucket(50'000), 0);  // 50 us: le="5e-05"
  EXPECT_EQ(StatsArea::LatencyBucket(50'001), 1);
  EXPECT_EQ(StatsArea::LatencyBucket(10'000'000'000), kLatencyBuckets - 2);  // 10 s
  EXPECT_EQ(StatsArea::LatencyBucket(11'000'000'000), kLatencyBuckets - 1);  // +Inf
}

TEST(StatsArea, TotalsSumEveryHandlersRow) {
  absl::StatusOr<StatsArea> area = StatsArea::Create();
  ASSERT_TRUE(area.ok()) << area.status();
  StatsArea::RecordCall(area->row(0), 0, 0, 40'000);       // Increment OK, 40 us
  StatsArea::RecordCall(area->row(1), 0, 0, 2'000'000);    // Increment OK, 2 ms
  StatsArea::RecordCall(area->row(5), 0, 5, 2'000'000);    // Increment NOT_FOUND
  StatsArea::RecordCall(area->row(1), 2, 0, 100'000'000);  // Get OK, 100 ms
  const CallTotals t = area->Totals();
  EXPECT_EQ(t.requests[0][0], 2u);
  EXPECT_EQ(t.requests[0][5], 1u);
  EXPECT_EQ(t.requests[2][0], 1u);
  EXPECT_EQ(t.buckets[0][0], 1u);
  EXPECT_EQ(t.buckets[0][StatsArea::LatencyBucket(2'000'000)], 2u);
  EXPECT_EQ(t.sum_ns[0], 4'040'000u);
  EXPECT_EQ(t.calls(), 4u);
  EXPECT_EQ(t.errors(), 1u);
}

TEST(StatsArea, ChildrenCountIntoTheSameRows) {
  absl::StatusOr<StatsArea> area = StatsArea::Create();
  ASSERT_TRUE(area.ok());
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    StatsArea::RecordCall(area->row(3), 1, 0, 1000);
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_EQ(area->Totals().requests[1][0], 1u);  // the child's add is the parent's to read
}

class MetricsPageTest : public TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    table_ = MustCreate(1000);
    ASSERT_NE(table_, nullptr);
    absl::StatusOr<StatsArea> area = StatsArea::Create();
    ASSERT_TRUE(area.ok());
    area_.emplace(*std::move(area));
  }
  std::string Render(std::vector<std::string> prefixes, int64_t max) {
    return RenderMetrics({.table = table_.get(),
                          .stats = &*area_,
                          .export_prefixes = std::move(prefixes),
                          .export_max = max});
  }
  std::unique_ptr<CounterTable> table_;
  std::optional<StatsArea> area_;
};

TEST_F(MetricsPageTest, RequestsAndHistogramsAreSummedAcrossHandlers) {
  StatsArea::RecordCall(area_->row(0), 0, 0, 1000);
  StatsArea::RecordCall(area_->row(1), 0, 0, 1000);
  StatsArea::RecordCall(area_->row(1), 0, 3, 1000);  // INVALID_ARGUMENT
  const std::string page = Render({}, 10);
  EXPECT_THAT(page, HasSubstr("countersd_requests_total{method=\"Increment\",code=\"OK\"} 2\n"));
  EXPECT_THAT(
      page,
      HasSubstr("countersd_requests_total{method=\"Increment\",code=\"INVALID_ARGUMENT\"} 1\n"));
  EXPECT_THAT(page,
              HasSubstr("countersd_request_duration_seconds_count{method=\"Increment\"} 3\n"));
  EXPECT_THAT(page, HasSubstr("countersd_requests_total{method=\"GetStats\",code=\"OK\"} 0\n"));
  EXPECT_THAT(page, Not(HasSubstr("countersd_counter_value")));  // no prefix, no export
}

TEST_F(MetricsPageTest, ExportsTheKeysUnderThePrefixesUpToTheCapAndCountsTheRest) {
  for (int i = 0; i < 7; ++i) ASSERT_TRUE(table_->Set(absl::StrCat("app/", i), i).ok());
  ASSERT_TRUE(table_->Set("other", 1).ok());
  ASSERT_TRUE(table_->Set("q\"uote\\d", 9).ok());
  const std::string page = Render({"app/", "app/1", "q"}, 5);  // app/1 is under app/
  EXPECT_THAT(page, HasSubstr("countersd_counter_value{key=\"app/0\"} 0\n"));
  EXPECT_THAT(page, HasSubstr("countersd_counter_value{key=\"app/4\"} 4\n"));
  EXPECT_THAT(page, Not(HasSubstr("key=\"app/5\"")));
  EXPECT_THAT(page, Not(HasSubstr("key=\"other\"")));
  EXPECT_THAT(page, HasSubstr("countersd_counter_values_omitted 3\n"));  // app/5, app/6, q"uote\d
  const std::string all = Render({"q", "app/"}, 100);
  EXPECT_THAT(all, HasSubstr("countersd_counter_value{key=\"q\\\"uote\\\\d\"} 9\n"));
  EXPECT_THAT(all, HasSubstr("countersd_counter_values_omitted 0\n"));
}

// Attached handles in this process: each its own open file description of
// the map file, so its slot's lock is another's to the owner's.
class LocalMetricsTest : public MetricsPageTest {
 protected:
  void SetUp() override {
    MetricsPageTest::SetUp();
    grant_ = table_->OpenForAttach();
  }
  std::unique_ptr<CounterTable> AttachHere() {
    AttachGrant g = grant_;
    g.staging_fd = dup(grant_.staging_fd);  // Attach takes it
    absl::StatusOr<std::unique_ptr<CounterTable>> t = CounterTable::Attach(Path("t.map"), g);
    EXPECT_TRUE(t.ok()) << t.status();
    return t.ok() ? *std::move(t) : nullptr;
  }
  // As countersd::local::LocalTable does: the call, then its count.
  static void Increment(CounterTable& t, const std::string& key) {
    t.CountAttachedCall(layout::kAttachIncrement, t.Increment(key, 1).ok());
  }
  static void GetMissing(CounterTable& t) {
    absl::StatusOr<int64_t> v = t.Get("missing");
    EXPECT_EQ(v.status().code(), absl::StatusCode::kNotFound);
    t.CountAttachedCall(layout::kAttachGet, v.ok());
  }
  std::optional<double> Sample(const std::string& page, const std::string& series) {
    const std::string line = series + " ";
    const size_t at = page.find("\n" + line);
    if (at == std::string::npos) return std::nullopt;
    return std::stod(page.substr(at + 1 + line.size()));
  }
  AttachGrant grant_;
};

TEST_F(LocalMetricsTest, CallsArePerSlotAndTheTotalsKeepADetachedOnesCalls) {
  std::unique_ptr<CounterTable> a = AttachHere();
  std::unique_ptr<CounterTable> b = AttachHere();
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  Increment(*a, "local/a");
  Increment(*a, "local/a");
  GetMissing(*a);
  Increment(*b, "local/b");
  const std::string sa = absl::StrCat(a->attach_slot());
  const std::string sb = absl::StrCat(b->attach_slot());
  std::string page = Render({}, 10);
  EXPECT_EQ(Sample(page, "countersd_local_attachers"), 2) << page;
  EXPECT_EQ(Sample(page, "countersd_local_calls_total{method=\"Increment\"}"), 3) << page;
  EXPECT_EQ(Sample(page, "countersd_local_calls_total{method=\"Get\"}"), 1) << page;
  EXPECT_EQ(Sample(page, "countersd_local_calls_total{method=\"Delete\"}"), 0) << page;
  EXPECT_EQ(Sample(page, "countersd_local_call_failures_total"), 1) << page;
  EXPECT_EQ(Sample(page, "countersd_local_attacher_calls_total{slot=\"" + sa +
                             "\",method=\"Increment\"}"),
            2)
      << page;
  EXPECT_EQ(Sample(page, "countersd_local_attacher_calls_total{slot=\"" + sb +
                             "\",method=\"Increment\"}"),
            1)
      << page;
  EXPECT_TRUE(Sample(page, "countersd_local_attacher_start_time_seconds{slot=\"" + sa + "\"}"))
      << page;

  a.reset();  // detaches: its counts move to the retired totals
  page = Render({}, 10);
  EXPECT_EQ(Sample(page, "countersd_local_attachers"), 1) << page;
  EXPECT_EQ(Sample(page, "countersd_local_calls_total{method=\"Increment\"}"), 3) << page;
  EXPECT_EQ(Sample(page, "countersd_local_calls_total{method=\"Get\"}"), 1) << page;
  EXPECT_EQ(Sample(page, "countersd_local_call_failures_total"), 1) << page;
  EXPECT_THAT(page, Not(HasSubstr("slot=\"" + sa + "\""))) << page;

  // A new attacher starts from 0, whichever slot it takes; the totals go on.
  std::unique_ptr<CounterTable> c = AttachHere();
  ASSERT_NE(c, nullptr);
  Increment(*c, "local/c");
  page = Render({}, 10);
  EXPECT_EQ(Sample(page, "countersd_local_attacher_calls_total{slot=\"" +
                             absl::StrCat(c->attach_slot()) + "\",method=\"Increment\"}"),
            1)
      << page;
  EXPECT_EQ(Sample(page, "countersd_local_calls_total{method=\"Increment\"}"), 4) << page;
  std::vector<AttacherStats> stats = table_->AttacherStatsSnapshot();
  ASSERT_EQ(stats.size(), 2u);
  for (const AttacherStats& st : stats) {
    EXPECT_EQ(st.pid, getpid());
    EXPECT_EQ(st.uid, geteuid());
    EXPECT_TRUE(st.current);
  }
}

TEST_F(LocalMetricsTest, ADeadAttachersCallsAreKeptWhenTheOwnerFreesItsSlot) {
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    std::unique_ptr<CounterTable> t = AttachHere();
    if (t == nullptr) _exit(1);
    for (int i = 0; i < 3; ++i) Increment(*t, "local/dead");
    GetMissing(*t);
    _exit(0);  // dies attached: its slot stays claimed, its byte unlocked
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  std::string page = Render({}, 10);
  EXPECT_EQ(Sample(page, "countersd_local_attachers"), 1) << page;
  EXPECT_EQ(Sample(page, "countersd_local_calls_total{method=\"Increment\"}"), 3) << page;

  const std::vector<AttacherRecovery> recovered = table_->RecoverDeadAttachers(true);
  ASSERT_EQ(recovered.size(), 1u);
  EXPECT_EQ(recovered[0].pid, child);
  page = Render({}, 10);
  EXPECT_EQ(Sample(page, "countersd_local_attachers"), 0) << page;
  EXPECT_EQ(Sample(page, "countersd_local_calls_total{method=\"Increment\"}"), 3) << page;
  EXPECT_EQ(Sample(page, "countersd_local_calls_total{method=\"Get\"}"), 1) << page;
  EXPECT_EQ(Sample(page, "countersd_local_call_failures_total"), 1) << page;
  EXPECT_THAT(page, Not(HasSubstr("countersd_local_attacher_calls_total{"))) << page;
  AttachCallTotals retired;
  EXPECT_TRUE(table_->AttacherStatsSnapshot(&retired).empty());
  EXPECT_EQ(retired.calls[layout::kAttachIncrement], 3u);
  EXPECT_EQ(retired.failures, 1u);
}

TEST(LocalCallsHighWater, NeverServesLessThanBefore) {
  LocalCallsHighWater hw;
  uint64_t t[2] = {5, 1};
  hw.Raise(t, 2);
  EXPECT_EQ(t[0], 5u);
  uint64_t dip[2] = {4, 2};  // a call in flight between a slot and the retired totals
  hw.Raise(dip, 2);
  EXPECT_EQ(dip[0], 5u);
  EXPECT_EQ(dip[1], 2u);
  uint64_t more[2] = {7, 2};
  hw.Raise(more, 2);
  EXPECT_EQ(more[0], 7u);
}

TEST(MergeExportPrefixes, DropsPrefixesUnderAnotherAndSorts) {
  EXPECT_EQ(MergeExportPrefixes({"b", "a/x", "a/", "a/y", "c", "b"}),
            (std::vector<std::string>{"a/", "b", "c"}));
}

TEST(ProcessMetrics, ReadsStatFdsAndLimitsOfAMadeUpProc) {
  const std::string root = ::testing::TempDir() + "/proc_" + std::to_string(getpid());
  std::filesystem::create_directories(root + "/77/fd");
  for (const char* fd : {"0", "1", "2", "9"}) std::ofstream(root + "/77/fd/" + fd) << "";
  const long tick = sysconf(_SC_CLK_TCK);
  const long page = sysconf(_SC_PAGESIZE);
  // Fields 3.. after "(comm)"; utime 14 = 2 s, stime 15 = 1 s, starttime 22 =
  // 10 s after boot, vsize 23, rss 24 = 3 pages. The name has ") (" in it.
  std::ofstream(root + "/77/stat")
      << "77 (we) (ird) S 1 77 77 0 -1 0 0 0 0 0 " << 2 * tick << " " << tick << " 0 0 20 0 1 0 "
      << 10 * tick << " 123456 3 18446744073709551615\n";
  std::ofstream(root + "/stat") << "cpu 1 2 3\nbtime 1700000000\nprocesses 9\n";
  std::ofstream(root + "/77/limits")
      << "Limit                     Soft Limit           Hard Limit           Units\n"
         "Max open files            1024                 4096                 files\n";
  absl::StatusOr<ProcessSample> s = ReadProcessSample(77, root);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_DOUBLE_EQ(s->cpu_seconds, 3.0);
  EXPECT_EQ(s->virtual_bytes, 123456u);
  EXPECT_EQ(s->resident_bytes, static_cast<uint64_t>(3 * page));
  EXPECT_DOUBLE_EQ(s->start_time_seconds, 1700000010.0);
  EXPECT_EQ(s->open_fds, 4u);
  EXPECT_EQ(s->max_fds, std::optional<uint64_t>(1024));
  EXPECT_EQ(ReadProcessSample(78, root).status().code(), absl::StatusCode::kNotFound);
  std::filesystem::remove_all(root);
}

}  // namespace
}  // namespace countersd
