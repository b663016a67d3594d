// Issue 3, test 4: the supervisor and all its children SIGKILLed under load,
// then a restart on the same data directory during the same boot.
//
// The invariant checked per key after the restart (see increment_load.h):
//   acked <= value <= acked + unknown
// Within one boot the page cache keeps the live map, so the restarted daemon
// must trust it as it is: no snapshot restore, nothing set aside.
#include <sys/wait.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "shared/data_dir.h"
#include "tests/e2e/daemon_harness.h"
#include "tests/recovery/file_damage.h"
#include "tests/recovery/increment_load.h"
#include "tests/recovery/recovery_checks.h"
#include "tests/recovery/snapshot_scenario.h"

namespace countersd::testing {
namespace {

constexpr absl::Duration kWait = absl::Seconds(60);

DaemonOptions OnDir(const std::string& data_dir) {
  DaemonOptions options;
  options.handlers = 2;
  options.data_dir = data_dir;
  return options;
}

TEST(SupervisorCrashTest, KillingTheWholeDaemonUnderLoadLosesNoAcknowledgedIncrement) {
  ScopedTempDir dir;  // outlives both daemons
  std::map<std::string, KeyTally> tally, batch_tally;
  const std::vector<std::string> batch_keys = Keys("supervisor-crash-batch", 64);
  {
    auto daemon = Daemon::Start(OnDir(dir.path()));
    ASSERT_TRUE(daemon.ok()) << daemon.status();
    IncrementLoad load({.address = (*daemon)->address(),
                        .threads = 4,
                        .keys = Keys("supervisor-crash", 16),
                        .call_deadline = absl::Seconds(10)});
    IncrementLoad batch_load({.address = (*daemon)->address(),
                              .threads = 2,
                              .keys = batch_keys,
                              .call_deadline = absl::Seconds(10),
                              .batches = true});
    ASSERT_TRUE(load.WaitForAcked(3000, kWait)) << "load never got going: " << load.acked();
    ASSERT_TRUE(batch_load.WaitForAcked(100, kWait)) << "batches never got going";
    (*daemon)->KillAll();  // SIGKILL to the process group while calls are in flight
    load.Stop();
    batch_load.Stop();
    tally = load.Tally();
    batch_tally = batch_load.Tally();
  }
  int64_t acked = 0;
  for (const auto& [key, t] : tally) acked += t.acked;
  ASSERT_GE(acked, 3000);

  auto daemon = Daemon::Start(OnDir(dir.path()));
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  auto stub = NewStub((*daemon)->address());
  EXPECT_TRUE(AcknowledgedIncrementsPresent(*stub, tally)) << (*daemon)->log();
  EXPECT_TRUE(AcknowledgedIncrementsPresent(*stub, batch_tally));
  // Open rolled back any batch the kill cut short, whole.
  EXPECT_TRUE(CountersAllEqual(*stub, batch_keys));

  // Same boot: the live map was trusted, not replaced by a snapshot.
  EXPECT_FALSE(FindLogLine((*daemon)->log(), {"opened table", "during this boot"}).empty())
      << (*daemon)->log();
  EXPECT_TRUE(DirEntriesWithPrefix(dir.path(), absl::StrCat(kMapFile, ".", kUntrustedKind)).empty())
      << (*daemon)->log();
  EXPECT_TRUE(DirEntriesWithPrefix(dir.path(), absl::StrCat(kMapFile, ".", kCorruptKind)).empty())
      << (*daemon)->log();

  // The restarted daemon keeps counting from there.
  auto before = GetCounter(*stub, "supervisor-crash/0");
  ASSERT_TRUE(before.ok()) << before.status();
  auto after = IncrementCounter(*stub, "supervisor-crash/0", 5);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(*after, *before + 5);
}

}  // namespace
}  // namespace countersd::testing
