// Test harness for end-to-end tests: starts the real `countersd` binary as a
// separate process and talks to it over real gRPC.
//
//   auto daemon = Daemon::Start({.handlers = 2});
//   ASSERT_TRUE(daemon.ok()) << daemon.status();
//   auto stub = NewStub((*daemon)->address());
//
// How it works:
//  - Start spawns countersd (posix_spawn, no fork of the gRPC-using test
//    process) in its OWN process group, with --listen=127.0.0.1:0,
//    --log-format=json and stderr+stdout on a pipe. A reader thread drains
//    the pipe into a buffer and wakes WaitForLog waiters, so waiting is
//    event-driven. Start returns once the supervisor logs {"msg":"ready"} and
//    takes the resolved address from that line's "listen" field. The
//    daemon's /metrics listens on a free loopback port
//    (--metrics-listen=127.0.0.1:0), found in the aggregator's "metrics
//    listening on" line (metrics_address(), daemon_metrics.cc).
//  - The test process makes itself a child subreaper (PR_SET_CHILD_SUBREAPER),
//    so the daemon's handlers and aggregator become its children if the
//    supervisor dies. KillAll SIGKILLs the whole process group and reaps every
//    member: when it returns, no daemon process is left and the data
//    directory's flock is free, so a restart on the same directory works.
//  - ~Daemon calls KillAll if the daemon still runs, and removes the data
//    directory only if the harness created it.
//
// Thread-safety: one thread drives a Daemon; log()/WaitForLog may be called
// from any thread.
#ifndef COUNTERSD_TESTS_E2E_DAEMON_HARNESS_H_
#define COUNTERSD_TESTS_E2E_DAEMON_HARNESS_H_

#include <sys/types.h>

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "counters/v1/counters.grpc.pb.h"
#include "gtest/gtest.h"

namespace countersd::testing {

struct DaemonOptions {
  int handlers = 2;  // 0: no --handlers flag (the daemon's default, or COUNTERSD_HANDLERS)
  uint64_t capacity = 100000;
  std::string snapshot_interval = "1s";
  std::string data_dir;                  // empty: a new temporary directory, removed by ~Daemon
  std::vector<std::string> extra_flags;  // appended last, so they override the above
  std::vector<std::string> extra_env;    // "NAME=value" added to the daemon's environment
  std::string listen = "127.0.0.1:0";    // e.g. another daemon's address() to test a port clash
  std::string metrics_listen = "127.0.0.1:0";  // --metrics-listen (empty: no /metrics)
  absl::Duration ready_timeout = absl::Seconds(60);
};

class Daemon {
 public:
  // Starts countersd on `options.listen` (default 127.0.0.1:0) with
  // --log-format=json, captures stderr, waits (up to options.ready_timeout)
  // for the "ready" line and parses the resolved address. On exit before
  // ready or a timeout: kills what is left and returns an error whose message
  // includes the exit status and the daemon's log.
  static absl::StatusOr<std::unique_ptr<Daemon>> Start(DaemonOptions options);

  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  const std::string& address() const { return address_; }  // "127.0.0.1:PORT"
  // Where /metrics listens ("127.0.0.1:PORT"), from the aggregator's latest
  // "metrics listening on" line, waited for up to 60s; "" (with a test
  // failure) if it never came.
  std::string metrics_address();
  pid_t pid() const { return pid_; }                       // the supervisor
  const std::string& data_dir() const { return data_dir_; }
  // Everything the daemon wrote to stderr/stdout so far.
  std::string log() const;
  // The log lines (one JSON object each) whose "msg" field equals `msg`.
  std::vector<std::string> LogLinesWithMsg(std::string_view msg) const;

  // Waits until the log contains `needle` (true), or until `timeout` passes
  // or the pipe reaches EOF without it (false). Wakes on every chunk of
  // output; does not sleep-poll.
  bool WaitForLog(std::string_view needle, absl::Duration timeout);
  // Waits until `needle` occurs at least `count` times in the log.
  bool WaitForLogCount(std::string_view needle, int count, absl::Duration timeout);

  // The supervisor's live children (from /proc: ppid == pid()), i.e. the
  // handlers and the aggregator. Empty once the supervisor has exited.
  std::vector<pid_t> ChildPids() const;
  // The handlers among them: the live children whose pid a "started
  // handler" log line names.
  std::vector<pid_t> HandlerPids() const;

  // Sends SIGTERM to the supervisor and waits for it to exit; returns its raw
  // wait status (use WIFEXITED/WEXITSTATUS). DEADLINE_EXCEEDED if it does not
  // exit in time (it is then left running; ~Daemon kills it). After a normal
  // return, any process of the daemon's group still alive is killed.
  absl::StatusOr<int> Terminate(absl::Duration timeout = absl::Seconds(60));
  // Waits for the supervisor to exit by itself; raw wait status.
  absl::StatusOr<int> Wait(absl::Duration timeout);
  // SIGKILLs the supervisor and all its children (the process group) and
  // reaps them. Idempotent.
  void KillAll();
  bool running() const { return !reaped_; }

 private:
  Daemon() = default;
  void ReadLoop();
  void ReapGroupMembers(bool block);

  pid_t pid_ = -1;
  bool reaped_ = false;
  int wait_status_ = 0;
  int pidfd_ = -1;
  int pipe_fd_ = -1;
  std::string address_;
  std::string data_dir_;
  bool owns_data_dir_ = false;

  void WaitForLogEof(absl::Duration timeout);

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::string log_;   // guarded by mu_
  bool eof_ = false;  // guarded by mu_
  std::thread reader_;
};

// A temporary directory removed (recursively) by the destructor. For tests
// that restart daemons on the same data directory.
// Base of a test suite whose tests share one daemon: the suite's
// SetUpTestSuite calls StartSharedDaemon; the daemon stops after the suite.
// Tests keep apart by using TestKey() for their counters.
class SharedDaemonTest : public ::testing::Test {
 protected:
  static void StartSharedDaemon(const DaemonOptions& options);
  static void TearDownTestSuite();
  void SetUp() override { ASSERT_NE(daemon_, nullptr) << "the shared daemon did not start"; }
  // "<current test name>/<suffix>": a key no other test of the suite uses.
  static std::string TestKey(std::string_view suffix);

  static Daemon* daemon_;
};

class ScopedTempDir {
 public:
  ScopedTempDir();  // aborts the test binary if mkdtemp fails
  ~ScopedTempDir();
  ScopedTempDir(const ScopedTempDir&) = delete;
  ScopedTempDir& operator=(const ScopedTempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Runs a command, capturing stdout/stderr and the exit code, with a timeout.
// exit_code is the exit status, or 128+signal if it was killed by a signal.
// DEADLINE_EXCEEDED (with the output so far) if it runs too long; it is then
// killed. `extra_env` entries ("NAME=value") are added to the environment.
struct CommandResult {
  int exit_code;
  std::string out;
  std::string err;
};
absl::StatusOr<CommandResult> RunCommand(const std::vector<std::string>& argv,
                                         absl::Duration timeout = absl::Seconds(60),
                                         const std::vector<std::string>& extra_env = {});

// Paths of the binaries under test: $COUNTERSD_BIN / $COUNTERCTL_BIN if set,
// otherwise the build tree's. CounterctlPath() is empty if unknown.
std::string CountersdPath();
std::string CounterctlPath();
// $E2E_LOAD_CLIENT_BIN or the build tree's e2e_load_client (see
// load_client.cc for its flags and output). A test that runs it should
// add_dependencies(<test> e2e_load_client).
std::string LoadClientPath();

// A raw TCP socket connected to `address` ("127.0.0.1:PORT", as address()
// returns), for tests that speak below gRPC; -1 (with a test failure) if it
// cannot connect. The caller closes it.
int ConnectTcp(const std::string& address);
// The same without the test failure: -1 with errno set (daemon_metrics.cc).
int TryConnectTcp(const std::string& address);

// One HTTP/1.0 GET of `target` ("/metrics") from `address`
// ("127.0.0.1:PORT"), read to the end, for tests (daemon_metrics.cc): the
// status code and the body. UNAVAILABLE if it cannot connect,
// DEADLINE_EXCEEDED past `timeout`, DATA_LOSS for a reply that is not HTTP.
struct HttpResponse {
  int status = 0;
  std::string body;
};
absl::StatusOr<HttpResponse> HttpGet(const std::string& address, const std::string& target,
                                     absl::Duration timeout = absl::Seconds(10));

// A stub on a new insecure channel to `address`.
std::unique_ptr<counters::v1::CounterService::Stub> NewStub(const std::string& address);
// Same, on a channel that gets its own TCP connection (a local subchannel
// pool), so that several such channels spread over the handlers.
std::unique_ptr<counters::v1::CounterService::Stub> NewStubOnOwnConnection(
    const std::string& address);

// A Get of `key` with a 30 s deadline: its status, and the value into
// `*value` when OK.
grpc::Status GetCounter(counters::v1::CounterService::Stub* stub, const std::string& key,
                        int64_t* value);
// The value of `key` (GetCounter); a test failure naming the key and the
// status, and 0, if the Get fails.
int64_t CounterValue(counters::v1::CounterService::Stub* stub, const std::string& key);
// An Increment of `key` by `delta` with `options` (WriteOptions: a session,
// durable), a 30 s deadline and wait-for-ready: its status, and the value
// into `*value` (if given) when OK.
grpc::Status IncrementWithOptions(counters::v1::CounterService::Stub* stub,
                                  const std::string& key, int64_t delta,
                                  const counters::v1::WriteOptions& options,
                                  int64_t* value = nullptr);
// WriteOptions of session `id`'s write `sequence` (empty id: none).
counters::v1::WriteOptions SessionOptions(const std::string& id, uint64_t sequence,
                                          bool durable = false);

// The one-letter state of process `pid` from /proc/<pid>/stat ('R', 'S',
// 'T' stopped, 't' traced, 'Z', ...), or '\0' if there is no such process.
char ProcessState(pid_t pid);

// Extracts the string value of "field" from one JSON log line ("" if
// absent). Enough for the flat objects countersd logs; not a JSON parser.
std::string JsonField(std::string_view line, std::string_view field);

}  // namespace countersd::testing

#endif  // COUNTERSD_TESTS_E2E_DAEMON_HARNESS_H_
