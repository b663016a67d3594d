// Local attach against the real daemon: attached processes (attach_worker,
// each a program of its own) and RPC clients on the same keys, attachers
// that die inside a critical section (SIGSTOP by the table's test hook,
// then SIGKILL), one in another pid namespace, a daemon restart and a
// host-crash restore under an attached process, permissions and a
// directory with no daemon. How attach works: shared/table_attach.cc.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "proto/grpc_deadline.h"
#include "shared/counter_table.h"
#include "shared/data_dir.h"
#include "shared/monotonic_time.h"
#include "tests/e2e/daemon_harness.h"
#include "tests/recovery/file_damage.h"

extern char** environ;

namespace countersd::testing {
namespace {

using counters::v1::GetRequest;
using counters::v1::GetResponse;
using counters::v1::IncrementRequest;
using counters::v1::IncrementResponse;

std::string WorkerPath() {
  const char* p = std::getenv("ATTACH_WORKER_BIN");
  return p != nullptr ? p : ATTACH_WORKER_DEFAULT;
}

// An attach_worker (or a command that runs one) with pipes on its stdin and
// stdout, our child.
class Worker {
 public:
  explicit Worker(std::vector<std::string> argv) {
    int in[2], out[2];
    EXPECT_EQ(pipe2(in, O_CLOEXEC), 0);
    EXPECT_EQ(pipe2(out, O_CLOEXEC), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    std::vector<char*> args;
    for (std::string& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    EXPECT_EQ(posix_spawn(&pid_, args[0], &fa, nullptr, args.data(), environ), 0) << argv[0];
    posix_spawn_file_actions_destroy(&fa);
    close(in[0]);
    close(out[1]);
    stdin_ = in[1];
    stdout_ = out[0];
  }
  ~Worker() {
    if (stdin_ >= 0) close(stdin_);
    close(stdout_);
    if (pid_ > 0 && !reaped_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  pid_t pid() const { return pid_; }
  void Send(const std::string& line) {
    const std::string l = line + "\n";
    ASSERT_EQ(write(stdin_, l.data(), l.size()), static_cast<ssize_t>(l.size()));
  }
  void CloseStdin() {
    close(stdin_);
    stdin_ = -1;
  }
  // The next line of its stdout, waiting at most `timeout`; "" at EOF or timeout.
  std::string ReadLine(absl::Duration timeout = absl::Seconds(30)) {
    const absl::Time deadline = MonotonicNow() + timeout;
    for (;;) {
      if (size_t nl = buf_.find('\n'); nl != std::string::npos) {
        std::string line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        return line;
      }
      const absl::Duration left = deadline - MonotonicNow();
      if (left <= absl::ZeroDuration()) return "";
      pollfd p = {.fd = stdout_, .events = POLLIN, .revents = 0};
      if (poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1) <= 0) continue;
      char chunk[512];
      ssize_t n = read(stdout_, chunk, sizeof chunk);
      if (n <= 0) return "";
      buf_.append(chunk, static_cast<size_t>(n));
    }
  }
  // Waits until it stops (WUNTRACED): true if it did.
  bool WaitStopped() {
    int status = 0;
    return waitpid(pid_, &status, WUNTRACED) == pid_ && WIFSTOPPED(status);
  }
  void KillAndReap() {
    ASSERT_EQ(kill(pid_, SIGKILL), 0);
    Reap();
  }
  int Reap() {
    int status = 0;
    EXPECT_EQ(waitpid(pid_, &status, 0), pid_);
    reaped_ = true;
    return status;
  }

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
  int stdin_ = -1;
  int stdout_ = -1;
  std::string buf_;
};

std::vector<std::string> WorkerArgs(const Daemon& d, std::vector<std::string> rest) {
  std::vector<std::string> argv = {WorkerPath(), d.data_dir()};
  argv.insert(argv.end(), rest.begin(), rest.end());
  return argv;
}

absl::StatusOr<int64_t> RpcIncrement(const Daemon& d, const std::string& key, int64_t delta,
                                     absl::Duration deadline = absl::Seconds(30)) {
  auto stub = NewStub(d.address());
  grpc::ClientContext ctx;
  ctx.set_deadline(GrpcDeadlineAfter(deadline));
  IncrementRequest req;
  req.set_key(key);
  req.set_delta(delta);
  IncrementResponse resp;
  grpc::Status s = stub->Increment(&ctx, req, &resp);
  if (!s.ok()) return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
  return resp.value();
}

absl::StatusOr<int64_t> RpcGet(const Daemon& d, const std::string& key) {
  auto stub = NewStub(d.address());
  grpc::ClientContext ctx;
  ctx.set_deadline(GrpcDeadlineAfter(absl::Seconds(30)));
  GetRequest req;
  req.set_key(key);
  GetResponse resp;
  grpc::Status s = stub->Get(&ctx, req, &resp);
  if (!s.ok()) return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
  return resp.value();
}

DaemonOptions Options(int handlers, std::string data_dir = "") {
  DaemonOptions o;
  o.handlers = handlers;
  o.data_dir = std::move(data_dir);
  return o;
}

std::unique_ptr<Daemon> StartDaemon(DaemonOptions options) {
  absl::StatusOr<std::unique_ptr<Daemon>> d = Daemon::Start(std::move(options));
  EXPECT_TRUE(d.ok()) << d.status();
  return d.ok() ? *std::move(d) : nullptr;
}

TEST(LocalAttachTest, ExactTotalsUnderMixedLoad) {
  auto d = StartDaemon(Options(2));
  ASSERT_NE(d, nullptr);
  constexpr int kPerWorker = 20000, kRpcPerThread = 300;
  std::vector<std::unique_ptr<Worker>> workers;
  for (int i = 0; i < 3; ++i) {  // the same key, and a key of their own
    workers.push_back(std::make_unique<Worker>(
        WorkerArgs(*d, {"inc", "mixed/shared", "1", absl::StrCat(kPerWorker)})));
    workers.push_back(std::make_unique<Worker>(
        WorkerArgs(*d, {"inc", absl::StrCat("mixed/own", i), "3", absl::StrCat(kPerWorker)})));
  }
  std::vector<std::thread> rpc;
  for (int t = 0; t < 2; ++t) {
    rpc.emplace_back([&] {
      for (int i = 0; i < kRpcPerThread; ++i) ASSERT_TRUE(RpcIncrement(*d, "mixed/shared", 1).ok());
    });
  }
  for (auto& t : rpc) t.join();
  for (auto& w : workers) {
    EXPECT_TRUE(absl::StartsWith(w->ReadLine(absl::Seconds(120)), "ok "));
    EXPECT_EQ(w->Reap(), 0);
  }
  EXPECT_EQ(*RpcGet(*d, "mixed/shared"), 3 * kPerWorker + 2 * kRpcPerThread);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(*RpcGet(*d, absl::StrCat("mixed/own", i)), 3 * kPerWorker);
}

// A dead attacher inside a critical section: the stripe it held is freed
// and its half-done work rolled back, while an RPC waits for the stripe.
void ExpectRecoveredAfterKill(Daemon& d, const std::vector<std::string>& worker_args,
                              const std::string& blocked_key) {
  Worker w(WorkerArgs(d, worker_args));
  ASSERT_EQ(w.ReadLine(), "inside");
  ASSERT_TRUE(w.WaitStopped());
  // An RPC on the same stripe waits for it.
  absl::StatusOr<int64_t> rpc = absl::UnknownError("not run");
  std::thread waiter([&] { rpc = RpcIncrement(d, blocked_key, 100); });
  const absl::Time killed = MonotonicNow();
  w.KillAndReap();
  waiter.join();
  const absl::Duration took = MonotonicNow() - killed;
  ASSERT_TRUE(rpc.ok()) << rpc.status();
  ASSERT_TRUE(d.WaitForLog("\"attached process died\"", absl::Seconds(10))) << d.log();
  // The bound is 100ms while others wait; a loaded machine adds its own.
  std::printf("waiting RPC returned %s after the attacher's SIGKILL\n",
              absl::FormatDuration(took).c_str());
  EXPECT_LT(took, absl::Seconds(5));
}

TEST(LocalAttachTest, AttacherKilledInsideAnIncrement) {
  auto d = StartDaemon(Options(1));
  ASSERT_NE(d, nullptr);
  ASSERT_EQ(*RpcIncrement(*d, "dead/inc", 5), 5);
  ExpectRecoveredAfterKill(*d, {"stop-inc", "dead/inc", "7"}, "dead/inc");
  // The killed increment was never stored (the hook runs before the store).
  EXPECT_EQ(*RpcGet(*d, "dead/inc"), 105);
  EXPECT_NE(d->log().find("\"stripes_released\":1"), std::string::npos) << d->log();
  // Other attachers go on.
  Worker next(WorkerArgs(*d, {"inc", "dead/inc", "1", "10"}));
  EXPECT_EQ(next.ReadLine(), "ok 115");
}

TEST(LocalAttachTest, AttacherKilledInsideAnInsert) {
  auto d = StartDaemon(Options(1));
  ASSERT_NE(d, nullptr);
  ExpectRecoveredAfterKill(*d, {"stop-inc", "dead/new", "7"}, "dead/new");
  // The half-done insert is rolled back: only the RPC's delta is there.
  EXPECT_EQ(*RpcGet(*d, "dead/new"), 100);
  EXPECT_NE(d->log().find("\"inserts_rolled_back\":1"), std::string::npos) << d->log();
}

TEST(LocalAttachTest, AttacherKilledInsideABatch) {
  auto d = StartDaemon(Options(1));
  ASSERT_NE(d, nullptr);
  ASSERT_TRUE(RpcIncrement(*d, "dead/b1", 10).ok());
  ASSERT_TRUE(RpcIncrement(*d, "dead/b2", 20).ok());
  ExpectRecoveredAfterKill(*d, {"stop-batch", "dead/b1", "dead/b2"}, "dead/b2");
  // Rolled back whole: neither of the batch's increments is applied.
  EXPECT_EQ(*RpcGet(*d, "dead/b1"), 10);
  EXPECT_EQ(*RpcGet(*d, "dead/b2"), 120);
  EXPECT_NE(d->log().find("\"batches_rolled_back\":1"), std::string::npos) << d->log();
}

TEST(LocalAttachTest, AttacherInAnotherPidNamespaceIsFoundDead) {
  absl::StatusOr<CommandResult> probe =
      RunCommand({"/usr/bin/unshare", "-p", "-f", "--kill-child", "/bin/true"});
  if (!probe.ok() || probe->exit_code != 0) {
    GTEST_SKIP() << "unshare -p needs root (CAP_SYS_ADMIN)";
  }
  auto d = StartDaemon(Options(1));
  ASSERT_NE(d, nullptr);
  ASSERT_TRUE(RpcIncrement(*d, "ns/k", 1).ok());
  // The worker is pid 1 of its namespace (pids repeat across namespaces;
  // attach slots do not) and blocks inside the increment's critical section.
  std::vector<std::string> argv = {"/usr/bin/unshare", "-p", "-f", "--kill-child", WorkerPath(),
                                   d->data_dir(), "block-inc", "ns/k", "5"};
  Worker w(argv);
  ASSERT_EQ(w.ReadLine(), "inside");
  absl::StatusOr<int64_t> rpc = absl::UnknownError("not run");
  std::thread waiter([&] { rpc = RpcIncrement(*d, "ns/k", 100); });
  w.KillAndReap();  // unshare's death SIGKILLs its child (--kill-child)
  waiter.join();
  ASSERT_TRUE(rpc.ok()) << rpc.status();
  EXPECT_EQ(*rpc, 101);
  ASSERT_TRUE(d->WaitForLog("\"attached process died\"", absl::Seconds(10))) << d->log();
  EXPECT_NE(d->log().find("\"pid\":1,"), std::string::npos) << d->log();
}

TEST(LocalAttachTest, RestartRefusesTheOldAttachment) {
  ScopedTempDir dir;
  DaemonOptions opt = Options(1, absl::StrCat(dir.path(), "/data"));
  auto d = StartDaemon(opt);
  ASSERT_NE(d, nullptr);
  Worker w(WorkerArgs(*d, {"hold"}));
  ASSERT_TRUE(absl::StartsWith(w.ReadLine(), "attached "));
  w.Send("inc restart/k 1");
  ASSERT_EQ(w.ReadLine(), "ok 1");
  // A clean stop fences the attacher out before the final snapshot.
  absl::StatusOr<int> st = d->Terminate();
  ASSERT_TRUE(st.ok() && WIFEXITED(*st) && WEXITSTATUS(*st) == 0) << d->log();
  w.Send("inc restart/k 1");
  EXPECT_TRUE(absl::StartsWith(w.ReadLine(), "error 14 ")) << "refused once the daemon stopped";
  d = StartDaemon(opt);
  ASSERT_NE(d, nullptr);
  w.Send("inc restart/k 1");
  EXPECT_TRUE(absl::StartsWith(w.ReadLine(), "error 14 ")) << "the old attachment stays refused";
  w.Send("get restart/k");
  EXPECT_TRUE(absl::StartsWith(w.ReadLine(), "error 14 "));
  EXPECT_EQ(*RpcGet(*d, "restart/k"), 1);
  Worker fresh(WorkerArgs(*d, {"inc", "restart/k", "1", "1"}));
  EXPECT_EQ(fresh.ReadLine(), "ok 2");
}

TEST(LocalAttachTest, HostCrashRestoreNeverWritesTheOldFile) {
  ScopedTempDir dir;
  DaemonOptions opt = Options(1, absl::StrCat(dir.path(), "/data"));
  auto d = StartDaemon(opt);
  ASSERT_NE(d, nullptr);
  Worker w(WorkerArgs(*d, {"hold"}));
  ASSERT_TRUE(absl::StartsWith(w.ReadLine(), "attached "));
  w.Send("inc crash/k 1");
  ASSERT_EQ(w.ReadLine(), "ok 1");
  d->KillAll();
  // The map's last owner ran on another boot: it is set aside, and the
  // snapshot restored.
  const std::string map = absl::StrCat(opt.data_dir, "/", kMapFile);
  absl::StatusOr<std::string> other = OtherBootId();
  ASSERT_TRUE(other.ok());
  ASSERT_TRUE(SetMapBootId(map, *other).ok());
  d = StartDaemon(opt);
  ASSERT_NE(d, nullptr);
  ASSERT_TRUE(d->WaitForLog("untrusted", absl::Seconds(10))) << d->log();
  w.Send("inc crash/k 1000");
  EXPECT_TRUE(absl::StartsWith(w.ReadLine(), "error 14 "));
  std::string aside;
  for (const auto& e : std::filesystem::directory_iterator(opt.data_dir)) {
    if (absl::StrContains(e.path().filename().string(), ".untrusted-")) aside = e.path();
  }
  ASSERT_FALSE(aside.empty());
  auto old = CounterTable::OpenReadOnly(aside);
  ASSERT_TRUE(old.ok()) << old.status();
  EXPECT_EQ(*(*old)->Get("crash/k"), 1) << "a write landed in the file set aside";
}

// Attached increments are in the snapshots like the RPCs': a Snapshot
// after them holds them, and a host crash restores them from it.
TEST(LocalAttachTest, AttachedIncrementsAreInTheSnapshot) {
  ScopedTempDir dir;
  DaemonOptions opt = Options(1, absl::StrCat(dir.path(), "/data"));
  opt.snapshot_interval = "1h";  // only the Snapshot call below writes one
  auto d = StartDaemon(opt);
  ASSERT_NE(d, nullptr);
  Worker w(WorkerArgs(*d, {"inc", "snap/k", "5", "1000"}));
  ASSERT_EQ(w.ReadLine(), "ok 5000");
  ASSERT_EQ(w.Reap(), 0);
  {
    auto stub = NewStub(d->address());
    grpc::ClientContext ctx;
    ctx.set_deadline(GrpcDeadlineAfter(absl::Seconds(60)));
    counters::v1::SnapshotResponse resp;
    ASSERT_TRUE(stub->Snapshot(&ctx, counters::v1::SnapshotRequest(), &resp).ok());
  }
  d->KillAll();
  absl::StatusOr<std::string> other = OtherBootId();
  ASSERT_TRUE(other.ok());
  ASSERT_TRUE(SetMapBootId(absl::StrCat(opt.data_dir, "/", kMapFile), *other).ok());
  d = StartDaemon(opt);
  ASSERT_NE(d, nullptr);
  ASSERT_TRUE(d->WaitForLog("untrusted", absl::Seconds(10))) << d->log();
  EXPECT_EQ(*RpcGet(*d, "snap/k"), 5000);
}

// An attached process stopped inside a critical section while the daemon
// stops and starts: repairing the table under it could corrupt it if it
// resumed, so the stop does not mark the table clean and the start refuses,
// naming it, until it is gone.
TEST(LocalAttachTest, AStuckAttacherKeepsTheTableFromBeingRepairedUnderIt) {
  ScopedTempDir dir;
  DaemonOptions opt = Options(1, absl::StrCat(dir.path(), "/data"));
  auto d = StartDaemon(opt);
  ASSERT_NE(d, nullptr);
  ASSERT_EQ(*RpcIncrement(*d, "stuck/k", 1), 1);
  Worker w(WorkerArgs(*d, {"stop-inc", "stuck/k", "5"}));
  ASSERT_EQ(w.ReadLine(), "inside");
  ASSERT_TRUE(w.WaitStopped());
  absl::StatusOr<int> st = d->Terminate(absl::Seconds(120));
  ASSERT_TRUE(st.ok()) << d->log();
  EXPECT_TRUE(WIFEXITED(*st) && WEXITSTATUS(*st) == 1) << d->log();
  EXPECT_TRUE(d->WaitForLog("an attached process stayed inside a critical section",
                            absl::Seconds(1)))
      << d->log();
  absl::StatusOr<std::unique_ptr<Daemon>> refused = Daemon::Start(opt);
  ASSERT_FALSE(refused.ok());
  EXPECT_TRUE(absl::StrContains(refused.status().message(), "is alive but has held stripe"))
      << refused.status();
  w.KillAndReap();
  d = StartDaemon(opt);
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(*RpcGet(*d, "stuck/k"), 1) << "the stuck increment was never stored";
  EXPECT_EQ(*RpcIncrement(*d, "stuck/k", 1), 2);
}

TEST(LocalAttachTest, NoDaemonIsUnavailable) {
  ScopedTempDir dir;
  absl::StatusOr<CommandResult> r = RunCommand({WorkerPath(), dir.path(), "inc", "k", "1", "1"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 1);
  EXPECT_TRUE(absl::StartsWith(r->out, "error 14 no countersd owns this data directory")) << r->out;
}

TEST(LocalAttachTest, OnlyTheDaemonsUserOrItsAttachGroup) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to run a worker as another user";
  ScopedTempDir dir;
  ASSERT_EQ(chmod(dir.path().c_str(), 0711), 0);  // others may pass through, not list
  DaemonOptions opt = Options(1, absl::StrCat(dir.path(), "/data"));
  const std::vector<std::string> as_nobody = {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534",
                                              "--clear-groups"};
  auto d = StartDaemon(opt);
  ASSERT_NE(d, nullptr);
  std::vector<std::string> argv = as_nobody;
  for (const std::string& a : WorkerArgs(*d, {"inc", "perm/k", "1", "1"})) argv.push_back(a);
  absl::StatusOr<CommandResult> r = RunCommand(argv);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(absl::StartsWith(r->out, "error 7 ")) << r->out << r->err;
  EXPECT_TRUE(absl::StrContains(r->out, kAttachSocket) || absl::StrContains(r->out, kMapFile))
      << "the message names the file: " << r->out;
  ASSERT_TRUE(d->Terminate().ok());

  // With the group (nogroup, 65534), the same user attaches.
  opt.extra_flags = {"--attach-group=65534"};
  d = StartDaemon(opt);
  ASSERT_NE(d, nullptr);
  argv = {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--groups=65534"};
  for (const std::string& a : WorkerArgs(*d, {"inc", "perm/k", "1", "1"})) argv.push_back(a);
  r = RunCommand(argv);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->out, "ok 1\n") << r->err;
}

}  // namespace
}  // namespace countersd::testing
