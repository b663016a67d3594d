// FakeStreamServer: an in-process gRPC server of CounterService's
// IncrementStream alone, for the client's unit tests that need no daemon
// (increment_stream_test.cc, accumulator_test.cc). It is a real gRPC server
// on 127.0.0.1:0 with its counters in a map; the keys below make it
// misbehave on purpose, as a daemon can:
//   "refuse/..."   the message is answered OUT_OF_RANGE naming the first
//                  such increment, as the daemon names an overflow
//                  ("increment N: ..."), nothing applied, and the stream
//                  goes on;
//   "crash/..."    the message is applied and the stream ends UNAVAILABLE
//                  without its answer (a handler killed after the table
//                  changed, before the reply left);
//   "drop/..."     the stream ends UNAVAILABLE without applying or
//                  answering the message (killed before it);
//   "hold/..."     the message is applied and its answer waits for a
//                  Release() (one each, made before or after), or for the
//                  client to cancel the stream.
// Everything else is applied and answered like the daemon: the values
// after each increment, in order. A message with a session (its options'
// session_id and sequence) applied before gets its first answer again and
// is not applied twice, as the daemon does.
#ifndef COUNTERSD_TESTS_CLIENT_FAKE_STREAM_SERVER_H_
#define COUNTERSD_TESTS_CLIENT_FAKE_STREAM_SERVER_H_

#include <grpcpp/server.h>

#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "counters/v1/counters.grpc.pb.h"

namespace countersd::testing {

class FakeStreamServer {
 public:
  // Started on 127.0.0.1:`port` (0: any free port); aborts the test binary
  // if it cannot.
  explicit FakeStreamServer(int port = 0);
  ~FakeStreamServer();

  const std::string& address() const { return address_; }
  int port() const { return port_; }
  int64_t Value(const std::string& key) const;
  // Streams accepted so far.
  int streams() const;
  // Messages read with WriteOptions.durable set, and without.
  uint64_t durable_messages() const;
  uint64_t plain_messages() const;
  // Messages answered as a session's duplicate.
  uint64_t duplicates() const;
  // The authorization metadata of the last stream ("" if none).
  std::string last_authorization() const;
  // Lets one held answer go, now or when it comes.
  void Release();

 private:
  class Service;
  std::unique_ptr<Service> service_;
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
  int port_ = 0;
};

}  // namespace countersd::testing

#endif  // COUNTERSD_TESTS_CLIENT_FAKE_STREAM_SERVER_H_
