// counterctl stats' text for the server's uptime and restarts (the daemon
// on this branch reports 0 and none, so the end-to-end test cannot see
// them), and for the attached processes, a stale one among them.
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

TEST(StatsTextTest, AttachersAreOneRowEachWithTheirStateAndCallsByMethod) {
  counters::v1::GetStatsResponse r;
  EXPECT_EQ(AttachersText(r), "attachers: none\n");
  counters::v1::AttacherStats* a = r.add_attachers();
  a->set_slot(3);
  a->set_pid(4242);
  a->set_uid(1000);
  a->set_current(true);
  a->set_attached_unix_seconds(1764754200);  // 2025-12-03T09:30:00Z
  auto* c = a->add_calls();
  c->set_method("Increment");
  c->set_count(12345);
  c = a->add_calls();
  c->set_method("Get");
  c->set_count(1);
  a->set_failures(1);
  counters::v1::AttacherStats* b = r.add_attachers();
  b->set_slot(1017);
  b->set_pid(7);
  b->set_uid(0);
  b->set_current(false);
  b->set_attached_unix_seconds(0);
  EXPECT_EQ(AttachersText(r),
            "attachers (2):\n"
            "  SLOT   PID   UID  STATE    ATTACHED              FAILURES  CALLS\n"
            "     3  4242  1000  current  2025-12-03T09:30:00Z         1  Increment 12,345, Get 1\n"
            "  1017     7     0  stale    1970-01-01T00:00:00Z         0  none\n");
}

}  // namespace
}  // namespace countersd::ctl
