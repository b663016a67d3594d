// IncrementLoad: client threads that increment a shared set of keys over
// real gRPC and keep an exact account of what the server acknowledged, so a
// test can crash parts of the daemon under load and then check that nothing
// acknowledged was lost.
//
//   IncrementLoad load({.address = daemon->address(), .threads = 4, .keys = Keys("k", 16)});
//   ASSERT_TRUE(load.WaitForAcked(2000, absl::Seconds(60)));
//   ... crash something ...
//   load.Stop();
//   for (const auto& [key, tally] : load.Tally()) { ... }
//
// How it works:
//  - Each thread has its own channel on its own TCP connection (so threads
//    spread over the handlers) and loops: Increment(key) with the delta
//    absent (so +1), key chosen round-robin, every call with a deadline.
//    With `batches`, each call is instead one IncrementBatch of +1 to every
//    key, and counts for every key.
//  - OK: the increment is acknowledged: counted in `acked` for that key.
//    Any other status: its outcome is unknown (the handler may have applied
//    it and died before answering): counted in `unknown` for that key. So
//    after the load stops, for every key, the server's value must satisfy
//        acked <= value <= acked + unknown
//    (each call adds exactly 1, and only the calls the client made count).
//  - After a failed call, the next call of that thread sets wait_for_ready,
//    so a thread waits (bounded by the deadline) for the channel to
//    reconnect instead of spinning on fast UNAVAILABLE failures.
//  - All bookkeeping of a call (start, outcome) happens under one mutex, so
//    Progress() is a consistent cut across threads.
//  - Stop() cancels the calls in flight (their outcome is then unknown) and
//    joins the threads, so it returns promptly even if the daemon is gone.
//
// Thread-safety: all methods may be called from any one controlling thread
// while the load threads run; Tally() and failure_codes() after Stop().
// tally[k] is written only under mu_.
#ifndef COUNTERSD_TESTS_RECOVERY_INCREMENT_LOAD_H_
#define COUNTERSD_TESTS_RECOVERY_INCREMENT_LOAD_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"

namespace countersd::testing {

// "prefix/0" .. "prefix/(n-1)".
std::vector<std::string> Keys(const std::string& prefix, int n);

struct KeyTally {
  int64_t acked = 0;    // calls answered OK
  int64_t unknown = 0;  // calls answered with an error, cancelled or timed out
};

class IncrementLoad {
 public:
  struct Options {
    std::string address;
    int threads = 4;
    std::vector<std::string> keys;
    absl::Duration call_deadline = absl::Seconds(10);
    // false: each call is Increment(+1) of one key, round-robin.
    // true: each call is one IncrementBatch adding 1 to every key, so if
    // batches are atomic every key always holds the same value.
    bool batches = false;
  };

  // Starts the threads. REQUIRES: options.keys non-empty, threads >= 1.
  explicit IncrementLoad(Options options);
  ~IncrementLoad();  // Stop()
  IncrementLoad(const IncrementLoad&) = delete;
  IncrementLoad& operator=(const IncrementLoad&) = delete;

  // Waits until at least `n` increments in total have been acknowledged;
  // false if `timeout` passes first.
  bool WaitForAcked(int64_t n, absl::Duration timeout);
  int64_t acked() const;

  // Remembers how many increments each thread has had acknowledged so far.
  void Mark();
  // Waits until every thread has had at least one more increment
  // acknowledged since the last Mark(); false on timeout.
  bool WaitForEveryThreadAckedSinceMark(absl::Duration timeout);

  // Per key, a consistent cut taken now: `acked` = calls answered OK so far;
  // `unknown` = calls answered otherwise so far plus calls in flight. So
  // acked + unknown counts every call started so far: no value the server
  // held at this instant can exceed it.
  std::map<std::string, KeyTally> Progress() const;

  // Cancels the calls in flight and joins the threads. Idempotent.
  void Stop();

  // Per key, after Stop().
  std::map<std::string, KeyTally> Tally() const;
  // How many calls failed with each status code, after Stop().
  std::map<grpc::StatusCode, int64_t> failure_codes() const;
  // One example message per failure code, for diagnostics.
  std::map<grpc::StatusCode, std::string> failure_examples() const;

 private:
  struct PerThread {
    std::vector<KeyTally> tally;               // indexed like options_.keys
    int64_t acked = 0;                         // guarded by mu_
    int64_t acked_at_mark = 0;                 // guarded by mu_
    grpc::ClientContext* in_flight = nullptr;  // guarded by mu_
    size_t in_flight_key = 0;                  // guarded by mu_, valid while in_flight
    std::map<grpc::StatusCode, int64_t> failures;
    std::map<grpc::StatusCode, std::string> failure_examples;
  };
  void Run(int index);

  Options options_;
  std::atomic<bool> stop_{false};
  mutable absl::Mutex mu_;
  int64_t total_acked_ = 0;  // guarded by mu_
  bool stopped_ = false;
  std::vector<std::unique_ptr<PerThread>> per_thread_;
  std::vector<std::thread> threads_;
};

}  // namespace countersd::testing

#endif  // COUNTERSD_TESTS_RECOVERY_INCREMENT_LOAD_H_
