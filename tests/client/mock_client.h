// A CounterClient on gMock's CounterService stub, with retries fast enough
// for unit tests (a few milliseconds of back-off), for the client library's
// unit tests (client_test.cc, exactly_once_test.cc).
#ifndef COUNTERSD_TESTS_CLIENT_MOCK_CLIENT_H_
#define COUNTERSD_TESTS_CLIENT_MOCK_CLIENT_H_

#include <memory>

#include "absl/time/time.h"
#include "client/client.h"
// The generated mock header has no include guard: include it only here.
#include "counters/v1/counters_mock.grpc.pb.h"
#include "grpcpp/support/status.h"

namespace countersd {

inline const grpc::Status kUnavailable(grpc::StatusCode::UNAVAILABLE, "connection reset");

inline ClientOptions FastRetries() {
  ClientOptions o;
  o.timeout = absl::Seconds(30);
  o.max_attempts = 4;
  o.initial_backoff = absl::Milliseconds(1);
  o.max_backoff = absl::Milliseconds(2);
  return o;
}

struct Fixture {
  explicit Fixture(ClientOptions options = FastRetries()) {
    auto owned = std::make_unique<counters::v1::MockCounterServiceStub>();
    stub = owned.get();
    client = std::make_unique<CounterClient>(std::move(owned), options);
  }
  counters::v1::MockCounterServiceStub* stub;
  std::unique_ptr<CounterClient> client;
};

}  // namespace countersd

#endif  // COUNTERSD_TESTS_CLIENT_MOCK_CLIENT_H_
