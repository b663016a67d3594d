// The abuse patterns that are floods of valid gRPC calls, driven by real
// gRPC clients in the test process (the raw-HTTP/2 ones are abuse_load.py's):
//   ListFlood   `clients` clients, each on its own connection, list the
//               whole table page after page (the largest page), starting
//               over at the end, for `duration`.
//   WatchFlood  `watches` Health.Watch streams over `channels` connections
//               (under any per-connection stream cap), each reading its
//               first status, held for `duration`, then cancelled.
// Each returns what it saw as one flat JSON object (the "client=" part of
// the abuse-report lines) and decides nothing: the test asserts.
#ifndef COUNTERSD_TESTS_ABUSE_GRPC_PATTERNS_H_
#define COUNTERSD_TESTS_ABUSE_GRPC_PATTERNS_H_

#include <string>

#include "absl/time/time.h"

namespace countersd::testing {

struct ListFloodResult {
  int clients = 0;
  int64_t pages = 0;
  int64_t counters = 0;     // over all pages
  int64_t listings = 0;     // complete passes over the table
  int64_t errors = 0;       // calls that did not return OK
  std::string first_error;  // the first of them, if any
  double seconds = 0;
  std::string Json() const;
};
ListFloodResult ListFlood(const std::string& address, int clients, int page_size,
                          absl::Duration duration);

struct WatchFloodResult {
  int watches = 0;
  int started = 0;      // streams the server accepted
  int serving = 0;      // of which the first message said SERVING
  int ended_early = 0;  // streams that ended before they were cancelled
  int cancelled = 0;    // ended CANCELLED once cancelled (what a client cancel gives)
  double open_seconds = 0;  // to open all of them and read their first status
  double seconds = 0;
  std::string Json() const;
};
WatchFloodResult WatchFlood(const std::string& address, int watches, int channels,
                            absl::Duration duration);

}  // namespace countersd::testing

#endif  // COUNTERSD_TESTS_ABUSE_GRPC_PATTERNS_H_
