// The scenario of the project's original notes, generalised: processes that
// share one MAP_SHARED table through fork(), and what happens when one of
// them dies inside a critical section.
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "shared/counter_table.h"
#include "tests/shared/stopped_child.h"
#include "tests/shared/table_fixture.h"

namespace countersd {
namespace {

using stopped_child::KillAndReap;
using stopped_child::SpawnStoppedInside;
using stopped_child::WaitExit;

using MultiProcess = TempDirTest;

// Runs fn in a forked child; the child exits 0 if fn returns true.
pid_t Spawn(const std::function<bool()>& fn) {
  pid_t pid = fork();
  if (pid == 0) _exit(fn() ? 0 : 1);
  return pid;
}

TEST_F(MultiProcess, EightProcessesIncrementSharedAndOwnCountersExactly) {
  constexpr int kProcs = 8;
  constexpr int kIncrements = 100000;
  auto t = MustCreate(10000);
  std::vector<pid_t> kids;
  for (int p = 0; p < kProcs; ++p) {
    kids.push_back(Spawn([&, p] {
      std::string own = absl::StrCat("own-", p);
      for (int i = 0; i < kIncrements; ++i) {
        if (!t->Increment("shared", 1).ok() || !t->Increment(own, 1).ok()) return false;
      }
      return true;
    }));
  }
  for (pid_t k : kids) EXPECT_EQ(WaitExit(k), 0);
  EXPECT_EQ(*t->Get("shared"), int64_t{kProcs} * kIncrements);
  for (int p = 0; p < kProcs; ++p) EXPECT_EQ(*t->Get(absl::StrCat("own-", p)), kIncrements);
}

// The table is one MAP_SHARED mapping of its file: an increment made by
// another process through the table reaches the file and every process's
// view of the table. A MAP_PRIVATE mapping of the same file, once written
// (copy-on-write), keeps its own copy and does not see it: that is what the
// table would show other processes if its mapping were private.
TEST_F(MultiProcess, IncrementsOfAnotherProcessReachTheTableAndFileButNotAPrivateMapping) {
  constexpr int64_t kMarker = 0x5eed'c0de'0bad'f00d;
  constexpr int kIncrements = 1000;
  auto t = MustCreate(10000);
  ASSERT_TRUE(t->Set("probe", kMarker).ok());

  const int fd = open(Path("t.map").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  struct stat st = {};
  ASSERT_EQ(fstat(fd, &st), 0);
  const size_t size = static_cast<size_t>(st.st_size);
  void* map = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  close(fd);
  ASSERT_NE(map, MAP_FAILED);
  // The probe's value in the private mapping: the only 8-byte word equal to
  // the marker.
  int64_t* words = static_cast<int64_t*>(map);
  int64_t* value = nullptr;
  for (size_t i = 0; i < size / sizeof(int64_t); ++i) {
    if (words[i] != kMarker) continue;
    ASSERT_EQ(value, nullptr) << "the marker is in the file twice";
    value = &words[i];
  }
  ASSERT_NE(value, nullptr) << "the probe's value is not in the file";
  // A write (volatile: it must happen though it changes nothing): from now
  // on this page is the private copy.
  *static_cast<volatile int64_t*>(value) = kMarker;

  pid_t kid = Spawn([&] {
    for (int i = 0; i < kIncrements; ++i) {
      if (!t->Increment("probe", 1).ok()) return false;
    }
    return true;
  });
  EXPECT_EQ(WaitExit(kid), 0);

  EXPECT_EQ(*t->Get("probe"), kMarker + kIncrements);          // this process, through the table
  EXPECT_EQ(*static_cast<volatile int64_t*>(value), kMarker);  // the private copy
  // The file itself, through a fresh mapping of it.
  auto reopened = CounterTable::OpenReadOnly(Path("t.map"));
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  EXPECT_EQ(*(*reopened)->Get("probe"), kMarker + kIncrements);
  munmap(map, size);
}

// --- Death inside the critical section -------------------------------------

TEST_F(MultiProcess, ProcessKilledHoldingStripeIsReleasedAndOthersGoOn) {
  auto t = MustCreate(10000);
  ASSERT_TRUE(t->Set("hot", 1000).ok());
  // The child stops holding hot's stripe, before its store.
  pid_t victim = SpawnStoppedInside("hot", 0, [&] { (void)t->Increment("hot", 1); });
  // Others queue up on the same stripe.
  std::vector<pid_t> kids;
  for (int p = 0; p < 4; ++p) {
    kids.push_back(Spawn([&] {
      for (int i = 0; i < 1000; ++i) {
        if (!t->Increment("hot", 1).ok()) return false;
      }
      return true;
    }));
  }
  KillAndReap(victim);
  RecoveryReport rep = t->RecoverDeadProcess(victim);
  EXPECT_EQ(rep.stripes_released, 1);
  EXPECT_EQ(rep.inserts_rolled_back, 0);
  for (pid_t k : kids) EXPECT_EQ(WaitExit(k), 0);
  // The killed increment never happened; every other one did, once.
  EXPECT_EQ(*t->Get("hot"), 1000 + 4 * 1000);
}

TEST_F(MultiProcess, TwoProcessesKilledHoldingStripesAreRecoveredOneAfterTheOther) {
  auto t = MustCreate(10000);
  // Two keys on different stripes, each held by a process that then dies.
  std::string a = "held-a", b;
  for (int i = 0; b.empty(); ++i) {
    std::string k = absl::StrCat("held-b-", i);
    if (t->StripeOf(k) != t->StripeOf(a)) b = k;
  }
  pid_t pa = SpawnStoppedInside(a, 0, [&] { (void)t->Increment(a, 1); });
  pid_t pb = SpawnStoppedInside(b, 0, [&] { (void)t->Increment(b, 1); });
  KillAndReap(pa);
  KillAndReap(pb);
  // Recovering A must not wait for B's stripe (only this process can
  // release it): each call returns, in either order.
  EXPECT_EQ(t->RecoverDeadProcess(pa).stripes_released, 1);
  EXPECT_EQ(t->RecoverDeadProcess(pb).stripes_released, 1);
  EXPECT_EQ(t->size(), 0u);
  EXPECT_EQ(*t->Increment(a, 2), 2);
  EXPECT_EQ(*t->Increment(b, 3), 3);
  EXPECT_EQ(t->size(), 2u);
}

TEST_F(MultiProcess, ProcessKilledMidInsertIsRolledBack) {
  auto t = MustCreate(10000);
  pid_t victim = SpawnStoppedInside("new-key", 0, [&] { (void)t->Increment("new-key", 5); });
  KillAndReap(victim);
  RecoveryReport rep = t->RecoverDeadProcess(victim);
  EXPECT_EQ(rep.stripes_released, 1);
  EXPECT_EQ(rep.inserts_rolled_back, 1);
  EXPECT_EQ(t->Get("new-key").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(t->size(), 0u);
  EXPECT_EQ(*t->Increment("new-key", 1), 1);
  EXPECT_EQ(t->size(), 1u);
}

std::vector<std::string> ManyKeys(int n) {
  std::vector<std::string> keys;
  for (int i = 0; i < n; ++i) keys.push_back(absl::StrCat("batch-key-", i));
  return keys;
}

TEST_F(MultiProcess, ProcessKilledMidBatchIsRolledBackEntirely) {
  auto t = MustCreate(10000);
  auto keys = ManyKeys(50);  // spread over several stripes
  for (auto& k : keys) ASSERT_TRUE(t->Set(k, 7).ok());
  std::vector<CounterTable::KeyDelta> ops;
  for (auto& k : keys) ops.push_back({k, 100});
  ops.push_back({"batch-created", 1});
  // Stop at the 40th key: 39 increments are already applied.
  pid_t victim = SpawnStoppedInside(keys[39], 0, [&] { (void)t->IncrementBatch(ops); });
  KillAndReap(victim);
  RecoveryReport rep = t->RecoverDeadProcess(victim);
  EXPECT_EQ(rep.batches_rolled_back, 1);
  EXPECT_GE(rep.stripes_released, 2);
  for (auto& k : keys) EXPECT_EQ(*t->Get(k), 7) << k;
  EXPECT_EQ(t->Get("batch-created").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(t->size(), keys.size());
  // The table still works for batches on the same keys.
  auto again = t->IncrementBatch(ops);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*t->Get(keys[0]), 107);
}

TEST_F(MultiProcess, BatchCreatingKeysKilledMidwayLeavesNoKeys) {
  auto t = MustCreate(10000);
  auto keys = ManyKeys(30);
  std::vector<CounterTable::KeyDelta> ops;
  for (auto& k : keys) ops.push_back({k, 1});
  pid_t victim = SpawnStoppedInside(keys[20], 0, [&] { (void)t->IncrementBatch(ops); });
  KillAndReap(victim);
  EXPECT_EQ(t->RecoverDeadProcess(victim).batches_rolled_back, 1);
  EXPECT_EQ(t->size(), 0u);
  for (auto& k : keys) EXPECT_EQ(t->Get(k).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(t->List("", "", 100).size(), 0u);
}

TEST_F(MultiProcess, OpenAfterWholeCrashRollsBackHalfDoneBatch) {
  auto keys = ManyKeys(40);
  {
    auto t = MustCreate(10000);
    for (auto& k : keys) ASSERT_TRUE(t->Set(k, 1).ok());
    std::vector<CounterTable::KeyDelta> ops;
    for (auto& k : keys) ops.push_back({k, 1});
    pid_t victim = SpawnStoppedInside(keys[30], 0, [&] { (void)t->IncrementBatch(ops); });
    KillAndReap(victim);  // and the "supervisor" (this handle) goes away without recovering
  }
  OpenReport report;
  auto t = CounterTable::Open(Path("t.map"), RealSys(), &report);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(report.batches_rolled_back, 1);
  for (auto& k : keys) EXPECT_EQ(*(*t)->Get(k), 1) << k;
  EXPECT_EQ(*(*t)->Increment(keys[0], 1), 2);  // locks were re-initialised
}

// How far the writer of the test below has got, in memory it shares with
// the test (MAP_SHARED|MAP_ANONYMOUS, so it survives the fork).
struct WriterProgress {
  std::atomic<int64_t> batches_done{0};  // written by the writer only
};
static_assert(std::atomic<int64_t>::is_always_lock_free);

// A writer process applies kBatches batches of +1 to the same 64 keys while
// this process takes snapshots. Each snapshot must hold whole batches only
// (all 64 keys at one value), and a number of them that the writer had
// reached in the meantime (at least the batches done when it started, at
// most one past those done when it ended). Halfway the writer waits on a
// pipe until a snapshot has been taken there, so at least one snapshot is
// certainly taken mid-run, whatever the scheduling.
TEST_F(MultiProcess, SnapshotNeverContainsHalfABatch) {
  auto t = MustCreate(10000);
  auto keys = ManyKeys(64);
  std::vector<CounterTable::KeyDelta> ops;
  for (auto& k : keys) ops.push_back({k, 1});
  ASSERT_TRUE(t->IncrementBatch(ops).ok());
  constexpr int64_t kBatches = 20000;
  constexpr int64_t kHalf = kBatches / 2;
  void* shared = mmap(nullptr, sizeof(WriterProgress), PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(shared, MAP_FAILED);
  auto* progress = new (shared) WriterProgress;
  int resume[2];
  ASSERT_EQ(pipe(resume), 0);
  pid_t writer = Spawn([&] {
    close(resume[1]);
    for (int64_t i = 1; i <= kBatches; ++i) {
      if (!t->IncrementBatch(ops).ok()) return false;
      progress->batches_done.store(i, std::memory_order_release);
      char c;
      if (i == kHalf && read(resume[0], &c, 1) != 1) return false;
    }
    return true;
  });
  close(resume[0]);

  int snapshots = 0;
  bool resumed = false;
  int status = 0;
  pid_t reaped = 0;
  while (reaped == 0) {
    reaped = waitpid(writer, &status, WNOHANG);
    ASSERT_NE(reaped, -1);
    const int64_t before = progress->batches_done.load(std::memory_order_acquire);
    std::set<int64_t> values;
    size_t n = 0;
    t->SnapshotForEach([&](std::string_view, int64_t v) {
      values.insert(v);
      ++n;
    });
    const int64_t after = progress->batches_done.load(std::memory_order_acquire);
    ++snapshots;
    ASSERT_EQ(n, keys.size());
    ASSERT_EQ(values.size(), 1u) << "a snapshot saw half a batch";
    const int64_t seen = *values.begin() - 1;  // the writer's batches in it
    ASSERT_GE(seen, before) << "snapshot " << snapshots << " is older than its start";
    ASSERT_LE(seen, after + 1) << "snapshot " << snapshots << " is newer than its end";
    if (!resumed && before == kHalf) {
      // The writer is waiting for us: this snapshot is mid-run.
      EXPECT_EQ(seen, kHalf);
      ASSERT_EQ(write(resume[1], "x", 1), 1);
      resumed = true;
    }
  }
  close(resume[1]);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "writer status " << status;
  EXPECT_TRUE(resumed) << "no snapshot was taken while the writer was halfway";
  EXPECT_EQ(progress->batches_done.load(), kBatches);
  EXPECT_EQ(*t->Get(keys[5]), 1 + kBatches);
  munmap(shared, sizeof(WriterProgress));
}

}  // namespace
}  // namespace countersd
