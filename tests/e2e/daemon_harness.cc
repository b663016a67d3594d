#include "tests/e2e/daemon_harness.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "proto/grpc_deadline.h"
#include "shared/abseil_string_view.h"
#include "shared/monotonic_time.h"

extern char** environ;

namespace countersd::testing {
namespace {

absl::Status Errno(std::string_view call) {
  return absl::InternalError(absl::StrCat(Sv(call), ": ", std::strerror(errno)));
}

int PidfdOpen(pid_t pid) { return static_cast<int>(syscall(SYS_pidfd_open, pid, 0)); }

// Waits until `pidfd` is readable (the process exited) or `timeout` passes.
bool WaitPidfd(int pidfd, absl::Duration timeout) {
  absl::Time deadline = MonotonicNow() + timeout;
  while (true) {
    absl::Duration left = deadline - MonotonicNow();
    if (left <= absl::ZeroDuration()) return false;
    struct pollfd p = {pidfd, POLLIN, 0};
    int n = poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1);
    if (n > 0) return true;
    if (n < 0 && errno != EINTR) return false;
  }
}

// posix_spawn with the given stdout/stderr fds, optionally in a new process
// group, with default signal dispositions and an empty signal mask.
absl::StatusOr<pid_t> Spawn(const std::vector<std::string>& argv,
                            const std::vector<std::string>& extra_env, int out_fd, int err_fd,
                            bool new_group) {
  if (argv.empty()) return absl::InvalidArgumentError("empty argv");
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<std::string> env_storage;
  for (char** e = environ; *e != nullptr; ++e) env_storage.emplace_back(*e);
  for (const std::string& e : extra_env) env_storage.push_back(e);
  std::vector<char*> env;
  for (std::string& e : env_storage) env.push_back(e.data());
  env.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out_fd, 1);
  posix_spawn_file_actions_adddup2(&actions, err_fd, 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t empty, defaults;
  sigemptyset(&empty);
  sigemptyset(&defaults);
  for (int sig : {SIGTERM, SIGINT, SIGPIPE, SIGCHLD, SIGHUP, SIGQUIT}) sigaddset(&defaults, sig);
  short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
  if (new_group) {
    flags |= POSIX_SPAWN_SETPGROUP;
    posix_spawnattr_setpgroup(&attr, 0);
  }
  posix_spawnattr_setflags(&attr, flags);
  posix_spawnattr_setsigmask(&attr, &empty);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, args[0], &actions, &attr, args.data(), env.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    return absl::InternalError(absl::StrCat("posix_spawn(", argv[0], "): ", std::strerror(rc)));
  }
  return pid;
}

std::string DescribeWaitStatus(int status) {
  if (WIFEXITED(status)) return absl::StrCat("exit code ", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return absl::StrCat("killed by signal ", WTERMSIG(status));
  return absl::StrCat("wait status ", status);
}

std::string MakeTempDir(std::string_view prefix) {
  const char* base = getenv("TMPDIR");
  std::string tmpl =
      absl::StrCat(base != nullptr && *base != '\0' ? base : "/tmp", "/", Sv(prefix), "-XXXXXX");
  if (mkdtemp(tmpl.data()) == nullptr) return "";
  return tmpl;
}

}  // namespace

std::string JsonField(std::string_view line, std::string_view field) {
  std::string needle = absl::StrCat("\"", Sv(field), "\"");
  size_t pos = 0;
  while ((pos = line.find(needle, pos)) != std::string_view::npos) {
    size_t i = pos + needle.size();
    while (i < line.size() && line[i] == ' ') ++i;
    if (i >= line.size() || line[i] != ':') {  // a value that happens to equal the name
      pos = i;
      continue;
    }
    ++i;
    while (i < line.size() && line[i] == ' ') ++i;
    if (i >= line.size()) return "";
    std::string out;
    if (line[i] != '"') {  // number, bool, null
      while (i < line.size() && line[i] != ',' && line[i] != '}' && line[i] != ' ')
        out += line[i++];
      return out;
    }
    for (++i; i < line.size() && line[i] != '"'; ++i) {
      if (line[i] == '\\' && i + 1 < line.size()) {
        ++i;
        switch (line[i]) {
          case 'n':
            out += '\n';
            break;
          case 't':
            out += '\t';
            break;
          case 'r':
            out += '\r';
            break;
          default:
            out += line[i];  // \" \\ \/ (\uXXXX kept as "uXXXX")
        }
      } else {
        out += line[i];
      }
    }
    return out;
  }
  return "";
}

std::string CountersdPath() {
  if (const char* env = getenv("COUNTERSD_BIN"); env != nullptr && *env != '\0') return env;
  return COUNTERSD_BIN;
}

std::string CounterctlPath() {
  if (const char* env = getenv("COUNTERCTL_BIN"); env != nullptr && *env != '\0') return env;
#ifdef COUNTERCTL_BIN
  return COUNTERCTL_BIN;
#else
  return "";
#endif
}

std::string LoadClientPath() {
  if (const char* env = getenv("E2E_LOAD_CLIENT_BIN"); env != nullptr && *env != '\0') return env;
  return E2E_LOAD_CLIENT_BIN;
}

int ConnectTcp(const std::string& address) {
  const int fd = TryConnectTcp(address);
  if (fd < 0) ADD_FAILURE() << "connect " << address << ": " << strerror(errno);
  return fd;
}

std::unique_ptr<counters::v1::CounterService::Stub> NewStub(const std::string& address) {
  return counters::v1::CounterService::NewStub(
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
}

std::unique_ptr<counters::v1::CounterService::Stub> NewStubOnOwnConnection(
    const std::string& address) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return counters::v1::CounterService::NewStub(
      grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args));
}

grpc::Status GetCounter(counters::v1::CounterService::Stub* stub, const std::string& key,
                        int64_t* value) {
  grpc::ClientContext ctx;
  ctx.set_deadline(GrpcDeadlineAfter(absl::Seconds(30)));
  counters::v1::GetRequest req;
  req.set_key(key);
  counters::v1::GetResponse resp;
  grpc::Status s = stub->Get(&ctx, req, &resp);
  if (s.ok()) *value = resp.value();
  return s;
}

grpc::Status IncrementWithOptions(counters::v1::CounterService::Stub* stub,
                                  const std::string& key, int64_t delta,
                                  const counters::v1::WriteOptions& options, int64_t* value) {
  grpc::ClientContext ctx;
  ctx.set_deadline(GrpcDeadlineAfter(absl::Seconds(30)));
  // A channel whose first connection was reset waits to reconnect rather
  // than failing every call at once until its back-off ends.
  ctx.set_wait_for_ready(true);
  counters::v1::IncrementRequest req;
  req.set_key(key);
  req.set_delta(delta);
  *req.mutable_options() = options;
  counters::v1::IncrementResponse resp;
  grpc::Status s = stub->Increment(&ctx, req, &resp);
  if (s.ok() && value != nullptr) *value = resp.value();
  return s;
}

counters::v1::WriteOptions SessionOptions(const std::string& id, uint64_t sequence,
                                          bool durable) {
  counters::v1::WriteOptions o;
  if (!id.empty()) {
    o.set_session_id(id);
    o.set_sequence(sequence);
  }
  o.set_durable(durable);
  return o;
}

int64_t CounterValue(counters::v1::CounterService::Stub* stub, const std::string& key) {
  int64_t value = 0;
  grpc::Status s = GetCounter(stub, key, &value);
  EXPECT_TRUE(s.ok()) << key << ": " << s.error_message();
  return value;
}

ScopedTempDir::ScopedTempDir() : path_(MakeTempDir("countersd-test")) {
  if (path_.empty()) {
    std::perror("mkdtemp");
    std::abort();
  }
}

ScopedTempDir::~ScopedTempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

absl::StatusOr<std::unique_ptr<Daemon>> Daemon::Start(DaemonOptions options) {
  // Orphaned daemon children become ours, so KillAll can reap them.
  prctl(PR_SET_CHILD_SUBREAPER, 1);

  std::unique_ptr<Daemon> d(new Daemon());
  if (options.data_dir.empty()) {
    d->data_dir_ = MakeTempDir("countersd-e2e");
    if (d->data_dir_.empty()) return Errno("mkdtemp");
    d->owns_data_dir_ = true;
  } else {
    d->data_dir_ = options.data_dir;
  }

  std::vector<std::string> argv = {
      CountersdPath(),
      absl::StrCat("--listen=", options.listen),
      absl::StrCat("--data-dir=", d->data_dir_),
      absl::StrCat("--capacity=", options.capacity),
      absl::StrCat("--snapshot-interval=", options.snapshot_interval),
      "--log-format=json",
      absl::StrCat("--metrics-listen=", options.metrics_listen),
  };
  if (options.handlers > 0) argv.push_back(absl::StrCat("--handlers=", options.handlers));
  for (const std::string& f : options.extra_flags) argv.push_back(f);

  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return Errno("pipe2");
  absl::StatusOr<pid_t> pid = Spawn(argv, options.extra_env, fds[1], fds[1], /*new_group=*/true);
  close(fds[1]);
  if (!pid.ok()) {
    close(fds[0]);
    return pid.status();
  }
  d->pid_ = *pid;
  d->pipe_fd_ = fds[0];
  d->pidfd_ = PidfdOpen(d->pid_);
  d->reader_ = std::thread([raw = d.get()] { raw->ReadLoop(); });

  // Wait for the ready line, or for EOF (the daemon and all its children
  // exited), or the timeout.
  absl::Time deadline = MonotonicNow() + options.ready_timeout;
  std::string ready_line;
  {
    std::unique_lock<std::mutex> lock(d->mu_);
    size_t scanned = 0;
    while (true) {
      // Scan complete lines only.
      size_t end;
      while ((end = d->log_.find('\n', scanned)) != std::string::npos) {
        std::string_view line(d->log_.data() + scanned, end - scanned);
        if (JsonField(line, "msg") == "ready") {
          ready_line = std::string(line);
          break;
        }
        scanned = end + 1;
      }
      if (!ready_line.empty() || d->eof_) break;
      if (d->cv_.wait_for(lock, absl::ToChronoNanoseconds(deadline - MonotonicNow())) ==
              std::cv_status::timeout &&
          MonotonicNow() >= deadline) {
        break;
      }
    }
  }
  if (ready_line.empty()) {
    std::string why;
    absl::StatusOr<int> st = d->Wait(absl::Seconds(d->eof_ ? 10 : 0));
    if (st.ok()) {
      why = absl::StrCat("countersd exited before it was ready (", DescribeWaitStatus(*st), ")");
    } else {
      why = absl::StrCat("countersd was not ready within ",
                         absl::FormatDuration(options.ready_timeout));
    }
    d->KillAll();
    return absl::UnavailableError(
        absl::StrCat(why, "; command: ", absl::StrJoin(argv, " "), "\n--- log ---\n", d->log()));
  }
  d->address_ = JsonField(ready_line, "listen");
  if (d->address_.empty()) {
    d->KillAll();
    return absl::InternalError(absl::StrCat("ready line has no listen field: ", ready_line));
  }
  return d;
}

void Daemon::ReadLoop() {
  char buf[16384];
  while (true) {
    ssize_t n = read(pipe_fd_, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    std::lock_guard<std::mutex> lock(mu_);
    if (n <= 0) {
      eof_ = true;
      cv_.notify_all();
      return;
    }
    log_.append(buf, static_cast<size_t>(n));
    cv_.notify_all();
  }
}

std::string Daemon::log() const {
  std::lock_guard<std::mutex> lock(mu_);
  return log_;
}

std::vector<std::string> Daemon::LogLinesWithMsg(std::string_view msg) const {
  std::vector<std::string> out;
  std::string all = log();
  for (absl::string_view line : absl::StrSplit(all, '\n')) {
    if (JsonField(std::string_view(line.data(), line.size()), "msg") == msg) {
      out.emplace_back(line);
    }
  }
  return out;
}

bool Daemon::WaitForLog(std::string_view needle, absl::Duration timeout) {
  return WaitForLogCount(needle, 1, timeout);
}

bool Daemon::WaitForLogCount(std::string_view needle, int count, absl::Duration timeout) {
  absl::Time deadline = MonotonicNow() + timeout;
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    int found = 0;
    for (size_t pos = log_.find(needle); pos != std::string::npos;
         pos = log_.find(needle, pos + needle.size())) {
      if (++found >= count) return true;
    }
    if (eof_ || MonotonicNow() >= deadline) return false;
    cv_.wait_for(lock, absl::ToChronoNanoseconds(deadline - MonotonicNow()));
  }
}

std::vector<pid_t> Daemon::ChildPids() const {
  std::vector<pid_t> out;
  if (reaped_) return out;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    pid_t p;
    if (!absl::SimpleAtoi(entry.path().filename().string(), &p)) continue;
    std::ifstream in(entry.path() / "stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    // pid (comm) state ppid ...; comm may contain spaces and parentheses.
    size_t close_paren = stat.rfind(')');
    if (close_paren == std::string::npos) continue;
    std::vector<absl::string_view> rest =
        absl::StrSplit(absl::string_view(stat).substr(close_paren + 2), ' ');
    pid_t ppid;
    if (rest.size() < 2 || rest[0] == "Z" || !absl::SimpleAtoi(rest[1], &ppid)) continue;
    if (ppid == pid_) out.push_back(p);
  }
  return out;
}

std::vector<pid_t> Daemon::HandlerPids() const {
  std::vector<pid_t> out;
  const std::vector<pid_t> children = ChildPids();
  for (const std::string& line : LogLinesWithMsg("started handler")) {
    pid_t p;
    if (absl::SimpleAtoi(JsonField(line, "child_pid"), &p) &&
        std::find(children.begin(), children.end(), p) != children.end()) {
      out.push_back(p);
    }
  }
  return out;
}

char ProcessState(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // pid (comm) state ...; comm may contain spaces and parentheses.
  size_t close_paren = stat.rfind(')');
  if (close_paren == std::string::npos || close_paren + 2 >= stat.size()) return '\0';
  return stat[close_paren + 2];
}

absl::StatusOr<int> Daemon::Wait(absl::Duration timeout) {
  if (reaped_) return wait_status_;
  if (pidfd_ >= 0) {
    if (!WaitPidfd(pidfd_, timeout)) {
      return absl::DeadlineExceededError(absl::StrCat(
          "countersd pid ", pid_, " still running after ", absl::FormatDuration(timeout)));
    }
  }
  // pidfd readable (or unavailable: block).
  int status = 0;
  pid_t r;
  do {
    r = waitpid(pid_, &status, 0);
  } while (r < 0 && errno == EINTR);
  if (r != pid_) return Errno("waitpid(countersd)");
  reaped_ = true;
  wait_status_ = status;
  // The daemon's last lines may still be in the pipe: read up to EOF (every
  // writer is gone once the supervisor and its children are), so that log()
  // after Wait() holds everything the daemon wrote.
  WaitForLogEof(absl::Seconds(10));
  return status;
}

void Daemon::WaitForLogEof(absl::Duration timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, absl::ToChronoNanoseconds(timeout), [this] { return eof_; });
}

absl::StatusOr<int> Daemon::Terminate(absl::Duration timeout) {
  if (!reaped_) kill(pid_, SIGTERM);
  absl::StatusOr<int> status = Wait(timeout);
  if (status.ok()) {
    // Anything left of the group (there should be nothing) dies now.
    killpg(pid_, SIGKILL);
    ReapGroupMembers(/*block=*/true);
    WaitForLogEof(absl::Seconds(10));
  }
  return status;
}

void Daemon::ReapGroupMembers(bool block) {
  while (true) {
    int status;
    pid_t r = waitpid(-pid_, &status, block ? 0 : WNOHANG);
    if (r > 0) {
      if (r == pid_) {
        reaped_ = true;
        wait_status_ = status;
      }
      continue;
    }
    if (r < 0 && errno == EINTR) continue;
    return;  // ECHILD: no member left that is our child, or nothing ready.
  }
}

void Daemon::KillAll() {
  if (pid_ <= 0) return;
  killpg(pid_, SIGKILL);
  if (!reaped_) {
    int status;
    pid_t r;
    do {
      r = waitpid(pid_, &status, 0);
    } while (r < 0 && errno == EINTR);
    if (r == pid_) {
      reaped_ = true;
      wait_status_ = status;
    }
  }
  // The supervisor is dead, so its children are (or are becoming) ours as
  // subreaper. Kill again in case one was forked during the first kill, and
  // reap every member of the group.
  killpg(pid_, SIGKILL);
  ReapGroupMembers(/*block=*/true);
}

Daemon::~Daemon() {
  KillAll();
  if (reader_.joinable()) reader_.join();
  // In sanitizer builds a report from any daemon process lands in its log,
  // not in the test's own output: fail the test that ran it.
  for (const char* marker : {"AddressSanitizer", "LeakSanitizer", "runtime error:"}) {
    size_t at = log_.find(marker);
    if (at != std::string::npos) {
      ADD_FAILURE() << "sanitizer report in the daemon's log:\n"
                    << log_.substr(at > 200 ? at - 200 : 0, 4000);
      break;
    }
  }
  if (pipe_fd_ >= 0) close(pipe_fd_);
  if (pidfd_ >= 0) close(pidfd_);
  if (owns_data_dir_) {
    std::error_code ec;
    std::filesystem::remove_all(data_dir_, ec);
  }
}

Daemon* SharedDaemonTest::daemon_ = nullptr;

void SharedDaemonTest::StartSharedDaemon(const DaemonOptions& options) {
  absl::StatusOr<std::unique_ptr<Daemon>> d = Daemon::Start(options);
  ASSERT_TRUE(d.ok()) << d.status();
  daemon_ = d->release();
}

void SharedDaemonTest::TearDownTestSuite() {
  delete daemon_;
  daemon_ = nullptr;
}

std::string SharedDaemonTest::TestKey(std::string_view suffix) {
  return absl::StrCat(::testing::UnitTest::GetInstance()->current_test_info()->name(), "/",
                      std::string(suffix));
}

absl::StatusOr<CommandResult> RunCommand(const std::vector<std::string>& argv,
                                         absl::Duration timeout,
                                         const std::vector<std::string>& extra_env) {
  int out_pipe[2], err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0) return Errno("pipe2");
  if (pipe2(err_pipe, O_CLOEXEC) != 0) {
    close(out_pipe[0]);
    close(out_pipe[1]);
    return Errno("pipe2");
  }
  absl::StatusOr<pid_t> pid = Spawn(argv, extra_env, out_pipe[1], err_pipe[1], /*new_group=*/true);
  close(out_pipe[1]);
  close(err_pipe[1]);
  if (!pid.ok()) {
    close(out_pipe[0]);
    close(err_pipe[0]);
    return pid.status();
  }
  CommandResult result{-1, "", ""};
  absl::Time deadline = MonotonicNow() + timeout;
  bool timed_out = false;
  struct pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  int open_fds = 2;
  char buf[16384];
  while (open_fds > 0) {
    absl::Duration left = deadline - MonotonicNow();
    if (left <= absl::ZeroDuration()) {
      timed_out = true;
      break;
    }
    int n = poll(fds, 2, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1);
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      ssize_t r = read(fds[i].fd, buf, sizeof buf);
      if (r > 0) {
        (i == 0 ? result.out : result.err).append(buf, static_cast<size_t>(r));
      } else if (r == 0 || errno != EINTR) {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  for (auto& f : fds) {
    if (f.fd >= 0) close(f.fd);
  }
  if (timed_out) killpg(*pid, SIGKILL);
  int status = 0;
  pid_t r;
  do {
    r = waitpid(*pid, &status, 0);
  } while (r < 0 && errno == EINTR);
  // Orphans of the command (it ran in its own group) go too.
  killpg(*pid, SIGKILL);
  if (r != *pid) return Errno("waitpid");
  if (timed_out) {
    return absl::DeadlineExceededError(absl::StrCat(
        absl::StrJoin(argv, " "), " did not finish within ", absl::FormatDuration(timeout),
        "\n--- stdout ---\n", result.out, "\n--- stderr ---\n", result.err));
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

}  // namespace countersd::testing
