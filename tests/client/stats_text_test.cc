// counterctl stats' text for the server's uptime and restarts (the daemon
// on this branch reports 0 and none, so the end-to-end test cannot see them).
#include <string>

#include "client/counterctl/verbs.h"
#include "gtest/gtest.h"

namespace countersd::ctl {
namespace {

TEST(StatsTextTest, UptimeShowsTheLargestUnitFirst) {
  EXPECT_EQ(FormatUptime(0), "0s");
  EXPECT_EQ(FormatUptime(59), "59s");
  EXPECT_EQ(FormatUptime(303), "5m 3s");
  EXPECT_EQ(FormatUptime(3600), "1h 0m 0s");
  EXPECT_EQ(FormatUptime(2 * 86400 + 7), "2d 0h 0m 7s");
}

TEST(StatsTextTest, RestartsAreGroupedByRole) {
  counters::v1::GetStatsResponse r;
  EXPECT_EQ(RestartsText(r), "none");
  auto add = [&r](const char* role, const char* reason, uint64_t count) {
    counters::v1::ProcessRestarts* p = r.add_restarts();
    p->set_role(role);
    p->set_reason(reason);
    p->set_count(count);
  };
  add("handler", "signaled", 2);
  add("handler", "stalled", 1);
  add("aggregator", "exited", 1200);
  EXPECT_EQ(RestartsText(r), "handler 2 signaled, 1 stalled; aggregator 1,200 exited");
}

}  // namespace
}  // namespace countersd::ctl
