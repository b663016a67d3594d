// attach_worker: an attached process for the local attach tests, run as a
// separate program (posix_spawn from the test; under `unshare -p`, or
// `setpriv` as another user), so that it is a process of its own with its
// own pid namespace or credentials, as a real attacher is.
//
//   attach_worker DATA_DIR inc KEY DELTA COUNT
//       attaches, increments COUNT times, prints "ok <last value>" (or
//       "error <code> <message>") and exits 0 (1 on an error).
//   attach_worker DATA_DIR stop-inc KEY DELTA      (SIGSTOP inside)
//   attach_worker DATA_DIR stop-batch KEY1 KEY2    (SIGSTOP inside KEY2's)
//   attach_worker DATA_DIR block-inc KEY DELTA     (blocks on stdin inside)
//       arms the table's critical-section hook (the one the table tests
//       use) for the key, then increments it (a batch of +1 KEY1, +1 KEY2):
//       inside the critical section it prints "inside" and stops itself
//       with SIGSTOP (stop-*), or blocks reading stdin (block-inc: for a
//       process its parent cannot waitpid for, in another pid namespace).
//   attach_worker DATA_DIR hold
//       attaches, prints "attached <slot>", then runs commands from stdin,
//       one a line: "inc KEY DELTA", "get KEY"; answers each with
//       "ok <value>" or "error <code> <message>". Exits at EOF.
// An attach that fails prints "error <code> <message>" and exits 1.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <sstream>
#include <string>
#include <string_view>

#include "absl/strings/numbers.h"
#include "client/local/local_table.h"
#include "shared/counter_table.h"

namespace {

std::string* g_key = new std::string();
bool g_block = false;

void Hook(std::string_view key) {
  if (key != *g_key) return;
  g_key->clear();  // once
  std::printf("inside\n");
  std::fflush(stdout);
  if (g_block) {
    char c;
    while (read(0, &c, 1) > 0) {
    }
  } else {
    raise(SIGSTOP);
  }
}

template <typename T>
int Report(const absl::StatusOr<T>& r) {
  if (r.ok()) {
    std::printf("ok %lld\n", static_cast<long long>(*r));
  } else {
    std::printf("error %d %s\n", static_cast<int>(r.status().code()),
                std::string(r.status().message()).c_str());
  }
  std::fflush(stdout);
  return r.ok() ? 0 : 1;
}

int64_t Number(const char* s) {
  int64_t v = 0;
  if (!absl::SimpleAtoi(s, &v)) {
    std::fprintf(stderr, "attach_worker: not a number: %s\n", s);
    std::exit(2);
  }
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: attach_worker DATA_DIR inc|stop-inc|stop-batch|block-inc|hold ...\n");
    return 2;
  }
  const std::string op = argv[2];
  auto attached = countersd::local::LocalTable::Attach(argv[1]);
  if (!attached.ok()) return Report(absl::StatusOr<int64_t>(attached.status()));
  countersd::local::LocalTable& t = **attached;
  if (op == "inc" && argc == 6) {
    absl::StatusOr<int64_t> last = absl::InternalError("COUNT is 0");
    for (int64_t i = 0, n = Number(argv[5]); i < n; ++i) {
      last = t.Increment(argv[3], Number(argv[4]));
      if (!last.ok()) break;
    }
    return Report(last);
  }
  if ((op == "stop-inc" || op == "block-inc") && argc == 5) {
    *g_key = argv[3];
    g_block = op == "block-inc";
    countersd::CounterTable::SetCriticalSectionHookForTest(Hook);
    return Report(t.Increment(argv[3], Number(argv[4])));
  }
  if (op == "stop-batch" && argc == 5) {
    *g_key = argv[4];
    countersd::CounterTable::SetCriticalSectionHookForTest(Hook);
    const countersd::local::LocalTable::KeyDelta ops[] = {{argv[3], 1}, {argv[4], 1}};
    absl::StatusOr<std::vector<int64_t>> r = t.IncrementBatch(ops);
    return Report(r.ok() ? absl::StatusOr<int64_t>(r->back()) : r.status());
  }
  if (op == "hold" && argc == 3) {
    std::printf("attached %u\n", t.slot());
    std::fflush(stdout);
    std::string line;
    while (std::getline(std::cin, line)) {
      std::istringstream in(line);
      std::string cmd, key;
      int64_t delta = 0;
      in >> cmd >> key;
      if (cmd == "inc" && (in >> delta)) {
        Report(t.Increment(key, delta));
      } else if (cmd == "get") {
        Report(t.Get(key));
      } else {
        std::printf("error 3 unknown command: %s\n", line.c_str());
        std::fflush(stdout);
      }
    }
    return 0;
  }
  std::fprintf(stderr, "attach_worker: bad arguments for %s\n", op.c_str());
  return 2;
}
