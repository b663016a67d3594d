// The scenario of the project's original notes, generalised: processes that
// share one MAP_SHARED table through fork(), and what happens when one of
// them dies inside a critical section.
#include <fcntl.h>
#include <semaphore.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "shared/counter_table.h"
#include "tests/shared/table_fixture.h"

namespace countersd {
namespace {

using MultiProcess = TempDirTest;

// Runs fn in a forked child; the child exits 0 if fn returns true.
pid_t Spawn(const std::function<bool()>& fn) {
  pid_t pid = fork();
  if (pid == 0) _exit(fn() ? 0 : 1);
  return pid;
}

int WaitExit(pid_t pid) {
  int status = 0;
  EXPECT_EQ(waitpid(pid, &status, 0), pid);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
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

// The notes' own example: a counter and a process-shared semaphore in a
// mapped file. With MAP_SHARED parent and child see one counter; with
// MAP_PRIVATE the child's increments go to its private copy.
struct SharedCounter {
  sem_t mutex;
  int64_t count;
};

int64_t CountAfterChildIncrements(const std::string& path, int map_flags) {
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
  EXPECT_GE(fd, 0);
  EXPECT_EQ(ftruncate(fd, sizeof(SharedCounter)), 0);
  auto* c = static_cast<SharedCounter*>(
      mmap(nullptr, sizeof(SharedCounter), PROT_READ | PROT_WRITE, map_flags, fd, 0));
  close(fd);
  EXPECT_NE(c, MAP_FAILED);
  sem_init(&c->mutex, 1, 1);
  c->count = 0;
  pid_t kid = Spawn([c] {
    for (int i = 0; i < 1000; ++i) {
      sem_wait(&c->mutex);
      c->count++;
      sem_post(&c->mutex);
    }
    return true;
  });
  for (int i = 0; i < 1000; ++i) {
    sem_wait(&c->mutex);
    c->count++;
    sem_post(&c->mutex);
  }
  EXPECT_EQ(WaitExit(kid), 0);
  int64_t n = c->count;
  munmap(c, sizeof(SharedCounter));
  return n;
}

TEST_F(MultiProcess, MapSharedSharesAndMapPrivateDoesNot) {
  EXPECT_EQ(CountAfterChildIncrements(Path("shared.bin"), MAP_SHARED), 2000);
  // MAP_PRIVATE: copy-on-write; the parent only sees its own 1000 (and the
  // semaphore is not shared either, so each process locks its own copy).
  EXPECT_EQ(CountAfterChildIncrements(Path("private.bin"), MAP_PRIVATE), 1000);
}

// --- Death inside the critical section -------------------------------------

std::string* g_stop_key = new std::string();
int g_stop_after = 0;  // stop at the (n+1)-th hook call with that key

void StopHook(std::string_view key) {
  if (key == *g_stop_key && g_stop_after-- == 0) raise(SIGSTOP);
}

// Forks a child that runs fn with the hook armed; returns once the child is
// stopped inside the critical section.
pid_t SpawnStoppedInside(const std::string& key, int after, const std::function<void()>& fn) {
  pid_t pid = fork();
  if (pid == 0) {
    *g_stop_key = key;
    g_stop_after = after;
    CounterTable::SetCriticalSectionHookForTest(StopHook);
    fn();
    _exit(0);
  }
  int status = 0;
  EXPECT_EQ(waitpid(pid, &status, WUNTRACED), pid);
  EXPECT_TRUE(WIFSTOPPED(status)) << "child did not stop inside the critical section";
  return pid;
}

void KillAndReap(pid_t pid) {
  kill(pid, SIGKILL);
  int status;
  waitpid(pid, &status, 0);
}

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

TEST_F(MultiProcess, SnapshotNeverContainsHalfABatch) {
  auto t = MustCreate(10000);
  auto keys = ManyKeys(64);
  std::vector<CounterTable::KeyDelta> ops;
  for (auto& k : keys) ops.push_back({k, 1});
  ASSERT_TRUE(t->IncrementBatch(ops).ok());
  constexpr int kBatches = 20000;
  pid_t writer = Spawn([&] {
    for (int i = 0; i < kBatches; ++i) {
      if (!t->IncrementBatch(ops).ok()) return false;
    }
    return true;
  });
  // Every snapshot must see all 64 keys at one equal value.
  int snapshots = 0;
  bool writer_done = false;
  while (!writer_done) {
    writer_done = waitpid(writer, nullptr, WNOHANG) == writer;
    std::set<int64_t> values;
    size_t n = 0;
    t->SnapshotForEach([&](std::string_view, int64_t v) {
      values.insert(v);
      ++n;
    });
    ASSERT_EQ(n, keys.size());
    ASSERT_EQ(values.size(), 1u) << "a snapshot saw half a batch";
    ++snapshots;
  }
  EXPECT_EQ(*t->Get(keys[5]), 1 + kBatches);
  EXPECT_GT(snapshots, 0);
}

}  // namespace
}  // namespace countersd
