// Links against the installed countersd::client and makes one call to an
// address where nothing listens: proof that headers, libraries and their
// dependencies (gRPC, protobuf, Abseil) resolve from the install prefix.
#include <cstdio>

#include "client/client.h"

int main() {
  countersd::ClientOptions options;
  options.timeout = absl::Seconds(10);
  options.max_attempts = 1;
  countersd::CounterClient client("127.0.0.1:1", options);
  absl::StatusOr<int64_t> v = client.Get("consumer");
  if (v.status().code() != absl::StatusCode::kUnavailable) {
    std::fprintf(stderr, "expected UNAVAILABLE, got %s\n", v.status().ToString().c_str());
    return 1;
  }
  std::printf("consumer ok: %s\n", v.status().ToString().c_str());
  return 0;
}
