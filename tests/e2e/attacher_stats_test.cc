// The attached processes in GetStats and `counterctl stats`, end to end:
// this test process attaches to a real daemon with countersd::local, makes
// calls (failing ones among them), and GetStats over gRPC lists each
// attacher with exactly those calls, as counterctl does in text and JSON;
// an attacher of the daemon before a restart is listed stale, and its
// refused call counts as a failure.
#include <sys/wait.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/local/local_table.h"
#include "gtest/gtest.h"
#include "proto/grpc_deadline.h"
#include "tests/e2e/daemon_harness.h"

namespace countersd::testing {
namespace {

using counters::v1::AttacherStats;
using counters::v1::GetStatsRequest;
using counters::v1::GetStatsResponse;
using countersd::local::LocalTable;

GetStatsResponse Stats(Daemon& d) {
  auto stub = NewStub(d.address());
  grpc::ClientContext ctx;
  ctx.set_deadline(GrpcDeadlineAfter(absl::Seconds(30)));
  GetStatsResponse resp;
  grpc::Status s = stub->GetStats(&ctx, GetStatsRequest(), &resp);
  EXPECT_TRUE(s.ok()) << s.error_message();
  return resp;
}

// The attacher in `slot`, or a test failure and an empty one.
AttacherStats InSlot(const GetStatsResponse& r, uint32_t slot) {
  for (const AttacherStats& a : r.attachers()) {
    if (a.slot() == slot) return a;
  }
  ADD_FAILURE() << "no attacher in slot " << slot << ":\n" << r.DebugString();
  return AttacherStats();
}

std::map<std::string, uint64_t> Calls(const AttacherStats& a) {
  std::map<std::string, uint64_t> out;
  for (const auto& c : a.calls()) out[c.method()] += c.count();
  return out;
}

std::unique_ptr<LocalTable> MustAttach(const std::string& data_dir) {
  absl::StatusOr<std::unique_ptr<LocalTable>> t = LocalTable::Attach(data_dir);
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? *std::move(t) : nullptr;
}

CommandResult Counterctl(Daemon& d, std::vector<std::string> args) {
  std::vector<std::string> argv = {CounterctlPath(), "--addr=" + d.address()};
  argv.insert(argv.end(), args.begin(), args.end());
  absl::StatusOr<CommandResult> r = RunCommand(argv);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *r : CommandResult{-1, "", ""};
}

DaemonOptions OneHandler(const std::string& data_dir = "") {
  DaemonOptions o;
  o.handlers = 1;
  o.data_dir = data_dir;
  return o;
}

TEST(AttacherStats, GetStatsAndCounterctlListEachAttacherWithItsCalls) {
  ASSERT_FALSE(CounterctlPath().empty());
  absl::StatusOr<std::unique_ptr<Daemon>> d = Daemon::Start(OneHandler());
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(Stats(**d).attachers_size(), 0);
  const int64_t before = absl::ToUnixSeconds(absl::Now());
  std::unique_ptr<LocalTable> a = MustAttach((*d)->data_dir());
  std::unique_ptr<LocalTable> b = MustAttach((*d)->data_dir());
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  ASSERT_NE(a->slot(), b->slot());

  for (int i = 0; i < 3; ++i) ASSERT_TRUE(a->Increment("attached/a", 2).ok());
  const LocalTable::KeyDelta batch[] = {{"attached/a", 1}, {"attached/b", 5}};
  ASSERT_TRUE(a->IncrementBatch(batch).ok());
  ASSERT_TRUE(a->Get("attached/a").ok());
  EXPECT_EQ(a->Get("attached/missing").status().code(), absl::StatusCode::kNotFound);
  absl::StatusOr<LocalTable::CasResult> cas = a->CompareAndSet("attached/b", 0, 1);
  ASSERT_TRUE(cas.ok()) << cas.status();
  EXPECT_FALSE(cas->applied);  // not applied is still OK
  ASSERT_TRUE(b->Set("attached/c", 9).ok());
  const std::string_view keys[] = {"attached/a", "attached/c"};
  ASSERT_TRUE(b->BatchGet(keys).ok());
  ASSERT_TRUE(b->Delete("attached/c").ok());
  EXPECT_EQ(b->Delete("attached/c").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(b->Increment("", 1).status().code(), absl::StatusCode::kInvalidArgument);
  const int64_t after = absl::ToUnixSeconds(absl::Now());

  const GetStatsResponse stats = Stats(**d);
  ASSERT_EQ(stats.attachers_size(), 2) << stats.DebugString();
  const AttacherStats sa = InSlot(stats, a->slot());
  EXPECT_EQ(sa.pid(), getpid());
  EXPECT_EQ(sa.uid(), geteuid());
  EXPECT_TRUE(sa.current());
  EXPECT_GE(sa.attached_unix_seconds(), before);
  EXPECT_LE(sa.attached_unix_seconds(), after);
  EXPECT_EQ(Calls(sa),
            (std::map<std::string, uint64_t>{
                {"Increment", 3}, {"IncrementBatch", 1}, {"Get", 2}, {"CompareAndSet", 1}}))
      << sa.DebugString();
  EXPECT_EQ(sa.failures(), 1u);
  const AttacherStats sb = InSlot(stats, b->slot());
  EXPECT_TRUE(sb.current());
  EXPECT_EQ(Calls(sb), (std::map<std::string, uint64_t>{
                           {"Increment", 1}, {"BatchGet", 1}, {"Set", 1}, {"Delete", 2}}))
      << sb.DebugString();
  EXPECT_EQ(sb.failures(), 2u);
  // The handlers counted none of them.
  uint64_t handler_calls = 0;
  for (const auto& h : stats.handlers()) handler_calls += h.calls();
  EXPECT_LE(handler_calls, 2u);  // the two GetStats

  const CommandResult json = Counterctl(**d, {"--output=json", "stats"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  EXPECT_TRUE(absl::StrContains(
      json.out,
      absl::StrCat("{\"slot\":", a->slot(), ",\"pid\":", getpid(), ",\"uid\":", geteuid(),
                   ",\"current\":true,\"attached_unix_seconds\":", sa.attached_unix_seconds(),
                   ",\"calls\":{\"Increment\":3,\"IncrementBatch\":1,\"Get\":2,"
                   "\"CompareAndSet\":1},\"failures\":1}")))
      << json.out;
  EXPECT_TRUE(
      absl::StrContains(json.out, absl::StrCat("{\"slot\":", b->slot(), ",\"pid\":", getpid())))
      << json.out;
  const CommandResult text = Counterctl(**d, {"stats"});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_TRUE(absl::StrContains(text.out, "attachers (2):")) << text.out;
  EXPECT_TRUE(absl::StrContains(text.out, "SLOT  ")) << text.out;
  EXPECT_TRUE(absl::StrContains(text.out, "current")) << text.out;
  EXPECT_TRUE(absl::StrContains(text.out, "Increment 3, IncrementBatch 1, Get 2, CompareAndSet 1"))
      << text.out;
  EXPECT_TRUE(absl::StrContains(text.out, "Increment 1, BatchGet 1, Set 1, Delete 2")) << text.out;

  // Detached: listed no more.
  const uint32_t b_slot = b->slot();
  b.reset();
  const GetStatsResponse one = Stats(**d);
  ASSERT_EQ(one.attachers_size(), 1) << one.DebugString();
  EXPECT_NE(one.attachers(0).slot(), b_slot);
}

TEST(AttacherStats, AnAttacherOfTheDaemonBeforeARestartIsListedStale) {
  ASSERT_FALSE(CounterctlPath().empty());
  ScopedTempDir dir;
  absl::StatusOr<std::unique_ptr<Daemon>> first = Daemon::Start(OneHandler(dir.path()));
  ASSERT_TRUE(first.ok()) << first.status();
  std::unique_ptr<LocalTable> a = MustAttach(dir.path());
  ASSERT_NE(a, nullptr);
  ASSERT_TRUE(a->Increment("stale/a", 1).ok());
  absl::StatusOr<int> stopped = (*first)->Terminate();
  ASSERT_TRUE(stopped.ok()) << stopped.status();
  ASSERT_TRUE(WIFEXITED(*stopped) && WEXITSTATUS(*stopped) == 0) << (*first)->log();

  absl::StatusOr<std::unique_ptr<Daemon>> second = Daemon::Start(OneHandler(dir.path()));
  ASSERT_TRUE(second.ok()) << second.status();
  GetStatsResponse stats = Stats(**second);
  ASSERT_EQ(stats.attachers_size(), 1) << stats.DebugString();
  EXPECT_EQ(stats.attachers(0).slot(), a->slot());
  EXPECT_FALSE(stats.attachers(0).current());
  EXPECT_EQ(Calls(stats.attachers(0)), (std::map<std::string, uint64_t>{{"Increment", 1}}));

  // Its next write is refused, and counted as a failure.
  EXPECT_EQ(a->Increment("stale/a", 1).status().code(), absl::StatusCode::kUnavailable);
  stats = Stats(**second);
  ASSERT_EQ(stats.attachers_size(), 1) << stats.DebugString();
  EXPECT_EQ(Calls(stats.attachers(0)), (std::map<std::string, uint64_t>{{"Increment", 2}}));
  EXPECT_EQ(stats.attachers(0).failures(), 1u);
  const CommandResult text = Counterctl(**second, {"stats"});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_TRUE(absl::StrContains(text.out, "attachers (1):")) << text.out;
  EXPECT_TRUE(absl::StrContains(text.out, "stale")) << text.out;

  a.reset();
  EXPECT_EQ(Stats(**second).attachers_size(), 0);
  const CommandResult none = Counterctl(**second, {"stats"});
  EXPECT_TRUE(absl::StrContains(none.out, "attachers: none")) << none.out;
}

}  // namespace
}  // namespace countersd::testing
