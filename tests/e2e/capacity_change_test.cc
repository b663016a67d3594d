// A restart with another --capacity than the table's (server/table_selection.cc,
// WarnIfCapacityKept): the table keeps its capacity and the log says so,
// with the file's capacity, the requested one and how to grow; and the way
// it documents, a restore of the final snapshot at the new capacity, grows
// the table and keeps every counter.
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "proto/grpc_deadline.h"
#include "shared/data_dir.h"
#include "tests/e2e/daemon_harness.h"

namespace countersd::testing {
namespace {

using ::testing::HasSubstr;

counters::v1::GetStatsResponse Stats(const std::string& address) {
  auto stub = NewStub(address);
  grpc::ClientContext ctx;
  ctx.set_deadline(GrpcDeadlineAfter(absl::Seconds(30)));
  counters::v1::GetStatsResponse stats;
  EXPECT_TRUE(stub->GetStats(&ctx, counters::v1::GetStatsRequest(), &stats).ok());
  return stats;
}

int64_t Value(const std::string& address, const std::string& key) {
  auto stub = NewStub(address);
  grpc::ClientContext ctx;
  ctx.set_deadline(GrpcDeadlineAfter(absl::Seconds(30)));
  counters::v1::GetRequest req;
  req.set_key(key);
  counters::v1::GetResponse resp;
  EXPECT_TRUE(stub->Get(&ctx, req, &resp).ok());
  return resp.value();
}

std::vector<std::string> CapacityWarnings(const Daemon& daemon) {
  std::vector<std::string> out;
  std::string log = daemon.log();
  for (size_t pos = 0, end; (end = log.find('\n', pos)) != std::string::npos; pos = end + 1) {
    std::string line = log.substr(pos, end - pos);
    if (JsonField(line, "msg").find("--capacity=") == 0) out.push_back(line);
  }
  return out;
}

TEST(CapacityChangeTest, ADifferentCapacityIsAWarningAndARestoreFromTheSnapshotGrows) {
  ScopedTempDir dir;
  DaemonOptions options;
  options.handlers = 1;
  options.capacity = 1000;
  options.data_dir = dir.path();
  {
    auto first = Daemon::Start(options);
    ASSERT_TRUE(first.ok()) << first.status();
    auto stub = NewStub((*first)->address());
    grpc::ClientContext ctx;
    counters::v1::IncrementRequest req;
    req.set_key("grow/k");
    req.set_delta(5);
    counters::v1::IncrementResponse resp;
    ASSERT_TRUE(stub->Increment(&ctx, req, &resp).ok());
    EXPECT_TRUE(CapacityWarnings(**first).empty()) << (*first)->log();
    ASSERT_TRUE((*first)->Terminate().ok());
  }

  // A bigger --capacity on the existing table: kept, and said.
  options.capacity = 2000;
  {
    auto kept = Daemon::Start(options);
    ASSERT_TRUE(kept.ok()) << kept.status();
    std::vector<std::string> warnings = CapacityWarnings(**kept);
    ASSERT_EQ(warnings.size(), 1u) << (*kept)->log();
    EXPECT_EQ(JsonField(warnings[0], "level"), "warning");
    EXPECT_EQ(JsonField(warnings[0], "table_capacity"), "1000");
    EXPECT_EQ(JsonField(warnings[0], "requested_capacity"), "2000");
    EXPECT_THAT(JsonField(warnings[0], "msg"),
                HasSubstr("--capacity=2000 ignored: the table keeps its capacity of 1000; to grow: "
                          "stop countersd"));
    EXPECT_THAT(JsonField(warnings[0], "msg"),
                HasSubstr(absl::StrCat("move ", kMapFile, " out of ", dir.path())));
    EXPECT_EQ(Stats((*kept)->address()).capacity(), 1000u);
    ASSERT_TRUE((*kept)->Terminate().ok());
  }

  // The documented way to grow: after a clean stop, move the map out and
  // start with the new capacity; the final snapshot is restored at it.
  ScopedTempDir elsewhere;
  std::filesystem::rename(absl::StrCat(dir.path(), "/", kMapFile),
                          absl::StrCat(elsewhere.path(), "/", kMapFile));
  {
    auto grown = Daemon::Start(options);
    ASSERT_TRUE(grown.ok()) << grown.status();
    EXPECT_TRUE(CapacityWarnings(**grown).empty()) << (*grown)->log();
    EXPECT_EQ(Stats((*grown)->address()).capacity(), 2000u);
    EXPECT_EQ(Value((*grown)->address(), "grow/k"), 5);
    ASSERT_TRUE((*grown)->Terminate().ok());
  }

  // A smaller one: a table never shrinks.
  options.capacity = 500;
  auto smaller = Daemon::Start(options);
  ASSERT_TRUE(smaller.ok()) << smaller.status();
  std::vector<std::string> warnings = CapacityWarnings(**smaller);
  ASSERT_EQ(warnings.size(), 1u) << (*smaller)->log();
  EXPECT_THAT(JsonField(warnings[0], "msg"), HasSubstr("a table never shrinks"));
  EXPECT_EQ(Stats((*smaller)->address()).capacity(), 2000u);
}

}  // namespace
}  // namespace countersd::testing
