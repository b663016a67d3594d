// A step of the wall clock (NTP's first sync, `date -s`, a VM resumed or
// migrated) must not stall what the daemon schedules: its intervals and
// timeouts are measured on CLOCK_MONOTONIC (shared/monotonic_time.h).
//
// How it works: the daemon runs under libfaketime (Debian's libfaketime,
// LD_PRELOAD), its wall clock read from a file on every call
// (FAKETIME_TIMESTAMP_FILE, FAKETIME_NO_CACHE) and its monotonic clock left
// alone (FAKETIME_DONT_FAKE_MONOTONIC). Once the daemon has scheduled things
// (its first snapshot taken, so the next periodic one is due in a second; a
// connection accepted that sends no HTTP/2 preface, so it is due to be closed
// at the handshake timeout), the test steps the daemon's wall clock back an
// hour and checks that both still happen within seconds. It also checks that
// the step took effect: the next snapshot's wall-clock time, which the
// aggregator stamps with absl::Now(), is an hour behind the test's clock.
//
// Before the fix both schedules were kept on absl::Now(): after the step
// the aggregator waited an hour for its next periodic snapshot, and the
// silent connection stayed open an hour past its handshake timeout.
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "shared/monotonic_time.h"
#include "tests/e2e/daemon_harness.h"
#include "tests/recovery/recovery_checks.h"

namespace countersd::testing {
namespace {

constexpr absl::Duration kWait = absl::Seconds(30);

// Replaces the file libfaketime reads, atomically (a reader never sees it
// empty).
void WriteClockOffset(const std::string& path, const std::string& offset) {
  const std::string tmp = path + ".tmp";
  FILE* f = fopen(tmp.c_str(), "w");
  ASSERT_NE(f, nullptr);
  fputs(offset.c_str(), f);
  ASSERT_EQ(fclose(f), 0);
  ASSERT_EQ(rename(tmp.c_str(), path.c_str()), 0);
}

// Polls GetStats until `done` holds for the answer; false after kWait.
template <typename Done>
bool WaitForStats(Stub& stub, Done done, counters::v1::GetStatsResponse* last) {
  for (absl::Time deadline = MonotonicNow() + kWait; MonotonicNow() < deadline;) {
    absl::StatusOr<counters::v1::GetStatsResponse> s = GetStats(stub);
    if (s.ok()) {
      *last = *s;
      if (done(*s)) return true;
    }
    absl::SleepFor(absl::Milliseconds(20));  // poll interval of an observed state
  }
  return false;
}

TEST(ClockStepTest, AStepBackOfTheWallClockStallsNeitherSnapshotsNorHandshakeTimeouts) {
  const char* faketime = COUNTERSD_LIBFAKETIME;
  ASSERT_EQ(access(faketime, R_OK), 0)
      << faketime << " is missing: `make deps` (deploy/install-deps.sh) installs libfaketime";
  ScopedTempDir dir;
  const std::string clock_file = dir.path() + "/clock";
  WriteClockOffset(clock_file, "+0");
  // An instrumented daemon must let the preload come first.
  const char* inherited = getenv("ASAN_OPTIONS");
  const std::string asan = absl::StrCat("ASAN_OPTIONS=", inherited ? inherited : "",
                                        inherited ? ":" : "", "verify_asan_link_order=0");

  DaemonOptions options;
  options.handlers = 1;
  options.snapshot_interval = "1s";
  options.extra_flags = {"--handshake-timeout=2s"};
  options.extra_env = {absl::StrCat("LD_PRELOAD=", faketime),
                       absl::StrCat("FAKETIME_TIMESTAMP_FILE=", clock_file),
                       "FAKETIME_NO_CACHE=1", "FAKETIME_DONT_FAKE_MONOTONIC=1", asan};
  absl::StatusOr<std::unique_ptr<Daemon>> daemon = Daemon::Start(options);
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  auto stub = NewStub((*daemon)->address());

  counters::v1::GetStatsResponse stats;
  ASSERT_TRUE(WaitForStats(
      *stub, [](const auto& s) { return s.last_snapshot_generation() >= 1; }, &stats))
      << "no first snapshot: " << stats.ShortDebugString();
  const uint64_t generation = stats.last_snapshot_generation();
  const uint64_t open_before = stats.connections().open();

  // The silent connection is accepted (and its handshake deadline set)
  // before the step: GetStats counts it open.
  const int silent = ConnectTcp((*daemon)->address());  // never sends anything
  ASSERT_GE(silent, 0);
  ASSERT_TRUE(WaitForStats(
      *stub, [&](const auto& s) { return s.connections().open() > open_before; }, &stats))
      << "the silent connection was not accepted: " << stats.ShortDebugString();

  WriteClockOffset(clock_file, "-1h");
  ASSERT_TRUE(IncrementCounter(*stub, "clock/step", 1).ok());  // so a periodic snapshot is due

  EXPECT_TRUE(WaitForStats(
      *stub, [&](const auto& s) { return s.last_snapshot_generation() > generation; }, &stats))
      << "no periodic snapshot within " << kWait << " of the step: " << stats.ShortDebugString();
  // The step took effect in the daemon: its wall clock is an hour behind.
  EXPECT_LT(stats.last_snapshot_unix_seconds(), absl::ToUnixSeconds(absl::Now()) - 3000)
      << "the daemon's wall clock did not step back (libfaketime not in effect?)";

  pollfd p{.fd = silent, .events = POLLIN, .revents = 0};
  ASSERT_EQ(poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(kWait))), 1)
      << "the silent connection was still open " << kWait << " after the step (timeout 2s)";
  char byte;
  EXPECT_LE(recv(silent, &byte, 1, 0), 0) << "expected the daemon to close it";
  close(silent);
}

}  // namespace
}  // namespace countersd::testing
