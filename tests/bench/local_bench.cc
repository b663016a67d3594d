// local_bench: what an increment costs a process attached to a running
// countersd (countersd::local, issue 14), with no RPC.
//
//   local_bench --data-dir=DIR [--seconds=2] [--keys=1,1000] [--processes=1,2]
//   local_bench --path=own [--own-capacity=100000] ...     (see --path below)
//
// For every (keys, processes) cell, one after the other:
//  1. The parent reads each key's value (its own attach, then detach), so
//     that the check in step 4 holds whatever the table held before.
//  2. It forks the processes first; each attaches itself (a fork child
//     cannot use its parent's handle), builds its key strings, warms up for
//     --warmup seconds (the first increment of a key inserts it), writes
//     "ready" on its pipe and blocks reading the start pipe.
//  3. When every process is ready the parent closes the start pipe: every
//     read returns at once (a broadcast, not a sleep). Each process
//     increments by 1 for --seconds, round-robin over the keys from its own
//     starting key (process p of P starts at key p*K/P, so that two
//     processes are not in step), looking at the clock every 1,024
//     increments, and reports its counts and its own elapsed time.
//  4. The parent attaches again and reads every key back: each must have
//     gained exactly the increments the processes made to it (warm-up
//     included). Anything else fails the run, naming the key.
// --path takes the local path apart (the report uses local):
//   local     LocalTable::Attach and Increment: what an application uses;
//   attached  CounterTable::Attach, the same attached handle without
//             LocalTable's per-attacher call count (one relaxed fetch_add);
//   own       a table this program creates (--own-capacity), used by its
//             fork children as table_bench's processes do: no daemon, no
//             attach, no incarnation check.
// Keys are table_bench's (tests/bench/table_bench.cc): "requests:/api/v1/items"
// for one key, "key:0" .. "key:{K-1}" for K, so that the two measure the
// same hashing and probing; tests/bench/compare.py sets them side by side.
//
// Prints one JSON object on stdout (compare.py reads it with run_json):
//   {"path":"local","seconds":S,"cells":[{"keys":K,"processes":P,"increments":N,
//     "wall_ns":W,"ns_per_increment":W/N,"cpu_ns":C,"cpu_ns_per_increment":C/N,
//     "exact":true,"per_process":[{"increments":n,"warmup_increments":w,
//     "ns":t,"ns_per_increment":t/n,"cpu_ns":c,"cpu_ns_per_increment":c/n},
//     ...]}, ...]}
// wall_ns runs from the start broadcast to the last process's report; a
// process's ns from its start to its last increment. cpu_ns is the CPU
// time the processes used meanwhile (CLOCK_PROCESS_CPUTIME_ID): on a
// machine whose other load takes cores away, the wall figures grow with
// that load and the CPU ones much less.
// Exit 0; 1 on any failure (attach, an increment, a wrong total), with the
// reason on stderr; 2 for bad flags.
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "client/local/local_table.h"
#include "shared/abseil_string_view.h"
#include "shared/attach_grant.h"
#include "shared/counter_table.h"
#include "shared/data_dir.h"
#include "tests/tool_flags.h"

namespace {

using countersd::AttachGrant;
using countersd::CounterTable;
using countersd::kAttachSocket;
using countersd::kMapFile;
using countersd::RequestAttachGrant;
using countersd::Sv;
using countersd::local::LocalTable;
using Clock = std::chrono::steady_clock;

constexpr int kClockEvery = 1024;  // increments between two looks at the clock

[[noreturn]] void Die(const std::string& message) {
  std::fprintf(stderr, "local_bench: %s\n", message.c_str());
  std::exit(1);
}

int64_t Ns(Clock::duration d) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
}

// This process's CPU time (user + system, all threads), ns.
int64_t CpuNs() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

// What a process writes on its pipe: one record when ready, one at the end
// (or one error instead). Under PIPE_BUF, so each write is atomic.
struct Report {
  enum Kind : int32_t { kReady, kDone, kError } kind;
  int64_t warmup_increments;
  int64_t increments;
  int64_t ns;
  int64_t cpu_ns;  // CPU time the process used meanwhile
  char error[512];
};
static_assert(sizeof(Report) <= PIPE_BUF);

std::vector<std::string> KeysOf(int64_t n) {
  if (n == 1) return {"requests:/api/v1/items"};
  std::vector<std::string> keys;
  for (int64_t i = 0; i < n; ++i) keys.push_back(absl::StrCat("key:", i));
  return keys;
}

void WriteReport(int fd, const Report& r) {
  if (write(fd, &r, sizeof r) != static_cast<ssize_t>(sizeof r)) _exit(3);
}

[[noreturn]] void ChildFail(int fd, const std::string& message) {
  Report r{};
  r.kind = Report::kError;
  std::snprintf(r.error, sizeof r.error, "%s", message.c_str());
  WriteReport(fd, r);
  _exit(1);
}

// Increments keys[idx], keys[idx+1], ... (round-robin) until `until`;
// returns how many, in whole blocks of kClockEvery. A template, not a
// virtual call, so that every --path runs the same inlined loop.
template <typename Table>
int64_t IncrementUntil(Table* t, const std::vector<std::string_view>& keys, size_t* idx,
                       Clock::time_point until, int fd) {
  int64_t n = 0;
  size_t i = *idx;
  do {
    for (int b = 0; b < kClockEvery; ++b) {
      absl::StatusOr<int64_t> v = t->Increment(keys[i], 1);
      if (!v.ok()) {
        ChildFail(fd, absl::StrCat("Increment(", Sv(keys[i]), "): ", v.status().ToString()));
      }
      if (++i == keys.size()) i = 0;
    }
    n += kClockEvery;
  } while (Clock::now() < until);
  *idx = i;
  return n;
}

struct CellConfig {
  int64_t nkeys;
  int procs;
  double warmup_s;
  double seconds;
};

Clock::duration AsDuration(double s) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

// Steps 2 and 3 in process p, with the handle `t`; returns the kDone record.
template <typename Table>
Report Measure(Table* t, const CellConfig& cell, int p, int start_fd, int report_fd) {
  const std::vector<std::string> storage = KeysOf(cell.nkeys);
  const std::vector<std::string_view> keys(storage.begin(), storage.end());
  size_t idx = static_cast<size_t>(cell.nkeys * p / cell.procs);
  Report r{};
  r.warmup_increments =
      IncrementUntil(t, keys, &idx, Clock::now() + AsDuration(cell.warmup_s), report_fd);
  r.kind = Report::kReady;
  WriteReport(report_fd, r);
  char c;
  ssize_t got;
  while ((got = read(start_fd, &c, 1)) < 0 && errno == EINTR) {
  }
  if (got != 0) ChildFail(report_fd, "the start pipe did not close");
  const Clock::time_point start = Clock::now();
  const int64_t cpu_start = CpuNs();
  r.increments = IncrementUntil(t, keys, &idx, start + AsDuration(cell.seconds), report_fd);
  r.cpu_ns = CpuNs() - cpu_start;
  r.ns = Ns(Clock::now() - start);
  r.kind = Report::kDone;
  return r;
}

// What the processes increment (--path).
struct Target {
  enum Path { kLocal, kAttached, kOwn } path;
  std::string data_dir;               // kLocal, kAttached: the daemon's
  std::unique_ptr<CounterTable> own;  // kOwn: created before the fork
};

// Process p of the cell: attaches (or uses the inherited own table),
// measures, detaches, reports; never returns.
[[noreturn]] void RunChild(Target* target, const CellConfig& cell, int p, int start_fd,
                           int report_fd) {
  Report r;
  if (target->path == Target::kLocal) {
    absl::StatusOr<std::unique_ptr<LocalTable>> t = LocalTable::Attach(target->data_dir);
    if (!t.ok()) ChildFail(report_fd, absl::StrCat("Attach: ", t.status().ToString()));
    r = Measure(t->get(), cell, p, start_fd, report_fd);
    t->reset();  // detaches: the slot is free before the parent attaches to check
  } else if (target->path == Target::kAttached) {
    absl::StatusOr<AttachGrant> grant =
        RequestAttachGrant(absl::StrCat(target->data_dir, "/", kAttachSocket));
    if (!grant.ok()) ChildFail(report_fd, absl::StrCat("grant: ", grant.status().ToString()));
    absl::StatusOr<std::unique_ptr<CounterTable>> t =
        CounterTable::Attach(absl::StrCat(target->data_dir, "/", kMapFile), *grant);
    if (!t.ok()) ChildFail(report_fd, absl::StrCat("Attach: ", t.status().ToString()));
    r = Measure(t->get(), cell, p, start_fd, report_fd);
    t->reset();
  } else {
    // The owner's fork children share its handle (as table_bench's
    // RunProcesses): no attach, no incarnation check.
    r = Measure(target->own.get(), cell, p, start_fd, report_fd);
  }
  WriteReport(report_fd, r);
  _exit(0);
}

// Values of `keys` now (0 for a missing counter).
template <typename Table>
std::vector<int64_t> ValuesIn(const Table& t, const std::vector<std::string>& keys) {
  std::vector<int64_t> out;
  for (const std::string& k : keys) {
    absl::StatusOr<int64_t> v = t.Get(k);
    if (v.ok()) {
      out.push_back(*v);
    } else if (absl::IsNotFound(v.status())) {
      out.push_back(0);
    } else {
      Die(absl::StrCat("Get(", k, "): ", v.status().ToString()));
    }
  }
  return out;
}

std::vector<int64_t> ReadValues(const Target& target, const std::vector<std::string>& keys) {
  if (target.path == Target::kOwn) return ValuesIn(*target.own, keys);
  absl::StatusOr<std::unique_ptr<LocalTable>> t = LocalTable::Attach(target.data_dir);
  if (!t.ok()) Die(absl::StrCat("Attach(", target.data_dir, "): ", t.status().ToString()));
  return ValuesIn(**t, keys);
}

struct Child {
  pid_t pid;
  int fd;  // read end of its report pipe
  Report ready;
  Report done;
};

void KillAll(const std::vector<Child>& kids) {
  for (const Child& k : kids) kill(k.pid, SIGKILL);
  for (const Child& k : kids) waitpid(k.pid, nullptr, 0);
}

// Reads one record from every child, `kind` expected, within `limit`.
void ReadReports(std::vector<Child>* kids, Report::Kind kind, Clock::duration limit) {
  const Clock::time_point deadline = Clock::now() + limit;
  std::vector<bool> have(kids->size(), false);
  size_t left = kids->size();
  while (left > 0) {
    std::vector<pollfd> fds;
    std::vector<size_t> which;
    for (size_t i = 0; i < kids->size(); ++i) {
      if (have[i]) continue;
      fds.push_back({(*kids)[i].fd, POLLIN, 0});
      which.push_back(i);
    }
    const int64_t ms = Ns(deadline - Clock::now()) / 1000000;
    const int n = ms <= 0 ? 0 : poll(fds.data(), fds.size(), static_cast<int>(ms));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      KillAll(*kids);
      Die(absl::StrCat("a benchmark process did not report ",
                       kind == Report::kReady ? "ready" : "its counts", " in time"));
    }
    for (size_t j = 0; j < fds.size(); ++j) {
      if (fds[j].revents == 0) continue;
      Child& k = (*kids)[which[j]];
      Report r{};
      const ssize_t got = read(k.fd, &r, sizeof r);
      if (got == static_cast<ssize_t>(sizeof r) && r.kind == Report::kError) {
        KillAll(*kids);
        Die(absl::StrCat("process ", which[j], " (pid ", k.pid, "): ", r.error));
      }
      if (got != static_cast<ssize_t>(sizeof r) || r.kind != kind) {
        KillAll(*kids);
        Die(absl::StrCat("process ", which[j], " (pid ", k.pid, ") died or wrote garbage"));
      }
      (kind == Report::kReady ? k.ready : k.done) = r;
      have[which[j]] = true;
      --left;
    }
  }
}

// One cell (steps 1 to 4); appends its JSON object to `json`.
void RunCell(Target* target, const CellConfig& cell, std::string* json) {
  const int64_t nkeys = cell.nkeys;
  const int procs = cell.procs;
  const std::vector<std::string> keys = KeysOf(nkeys);
  const std::vector<int64_t> before = ReadValues(*target, keys);
  int start[2];
  if (pipe(start) != 0) Die(absl::StrCat("pipe: ", std::strerror(errno)));
  std::vector<Child> kids;
  for (int p = 0; p < procs; ++p) {
    int rep[2];
    if (pipe(rep) != 0) Die(absl::StrCat("pipe: ", std::strerror(errno)));
    std::fflush(nullptr);
    const pid_t pid = fork();
    if (pid < 0) Die(absl::StrCat("fork: ", std::strerror(errno)));
    if (pid == 0) {
      close(start[1]);  // else the start pipe never reaches EOF
      close(rep[0]);
      for (const Child& k : kids) close(k.fd);
      RunChild(target, cell, p, start[0], rep[1]);
    }
    close(rep[1]);
    kids.push_back({pid, rep[0], {}, {}});
  }
  close(start[0]);
  ReadReports(&kids, Report::kReady, std::chrono::seconds(60));
  const Clock::time_point t0 = Clock::now();
  close(start[1]);  // go: every process's read returns
  ReadReports(&kids, Report::kDone, AsDuration(cell.seconds) + std::chrono::seconds(60));
  const int64_t wall_ns = Ns(Clock::now() - t0);
  for (Child& k : kids) {
    int status = 0;
    if (waitpid(k.pid, &status, 0) != k.pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      Die(absl::StrCat("benchmark process pid ", k.pid, " did not exit 0 (status ", status, ")"));
    }
    close(k.fd);
  }

  // Step 4: each process made T = warm-up + measured increments from its
  // starting key s, so key j got T / K, plus one if (j - s) mod K < T mod K.
  std::vector<int64_t> expected = before;
  int64_t total = 0;
  for (int p = 0; p < procs; ++p) {
    const int64_t s = nkeys * p / procs;
    const int64_t t = kids[p].ready.warmup_increments + kids[p].done.increments;
    for (int64_t j = 0; j < nkeys; ++j) {
      expected[j] += t / nkeys + (((j - s + nkeys) % nkeys) < t % nkeys ? 1 : 0);
    }
    total += kids[p].done.increments;
  }
  const std::vector<int64_t> after = ReadValues(*target, keys);
  for (int64_t j = 0; j < nkeys; ++j) {
    if (after[j] != expected[j]) {
      Die(absl::StrCat("WRONG TOTAL: counter \"", keys[j], "\" is ", after[j], ", expected ",
                       expected[j], " (", before[j], " before the run + the increments of ", procs,
                       " process(es)); cell keys=", nkeys, " processes=", procs));
    }
  }

  int64_t cpu_ns = 0;
  for (const Child& k : kids) cpu_ns += k.done.cpu_ns;
  const auto per = [](int64_t ns, int64_t n) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3f", static_cast<double>(ns) / static_cast<double>(n));
    return std::string(buf);
  };
  absl::StrAppend(json, json->back() == '[' ? "" : ",", "{\"keys\":", nkeys,
                  ",\"processes\":", procs, ",\"increments\":", total, ",\"wall_ns\":", wall_ns,
                  ",\"ns_per_increment\":", per(wall_ns, total), ",\"cpu_ns\":", cpu_ns,
                  ",\"cpu_ns_per_increment\":", per(cpu_ns, total),
                  ",\"exact\":true,\"per_process\":[");
  for (int p = 0; p < procs; ++p) {
    const Report& d = kids[p].done;
    absl::StrAppend(json, p == 0 ? "" : ",", "{\"increments\":", d.increments,
                    ",\"warmup_increments\":", kids[p].ready.warmup_increments, ",\"ns\":", d.ns,
                    ",\"ns_per_increment\":", per(d.ns, d.increments), ",\"cpu_ns\":", d.cpu_ns,
                    ",\"cpu_ns_per_increment\":", per(d.cpu_ns, d.increments), "}");
  }
  absl::StrAppend(json, "]}");
  std::fprintf(stderr,
               "local_bench: keys=%lld processes=%d: %.2f ns per increment (wall, %lld in "
               "%.3f s), %.2f ns of CPU; totals exact\n",
               static_cast<long long>(nkeys), procs, static_cast<double>(wall_ns) / total,
               static_cast<long long>(total), wall_ns / 1e9, static_cast<double>(cpu_ns) / total);
}

std::vector<int64_t> ParseList(const countersd::testing::ToolFlags& flags, const std::string& name,
                               const std::string& value, int64_t max) {
  std::vector<int64_t> out;
  for (absl::string_view part : absl::StrSplit(value, ',')) {
    int64_t v = 0;
    if (!absl::SimpleAtoi(part, &v) || v < 1 || v > max) {
      flags.Fail(absl::StrCat("--", name, " needs numbers from 1 to ", max,
                              ", comma-separated; got '", value, "'"));
    }
    out.push_back(v);
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::string data_dir;
  std::string keys_list = "1,1000";
  std::string procs_list = "1,2";
  std::string path = "local";
  int64_t own_capacity = 100000;
  double seconds = 2.0;
  double warmup = 0.2;
  countersd::testing::ToolFlags flags(
      "local_bench",
      "Nanoseconds per increment of processes attached to a running countersd\n"
      "(countersd::local), for every --keys x --processes cell; checks the totals.");
  flags.Add("data-dir", &data_dir, "DIR", "the running daemon's --data-dir (not for --path=own)");
  flags.Add("keys", &keys_list, "K,...", "distinct keys per cell (1: the hot key)");
  flags.Add("processes", &procs_list, "P,...", "attached processes per cell");
  flags.Add("seconds", &seconds, "S", "measured seconds per cell");
  flags.Add("warmup", &warmup, "S", "unmeasured seconds per process before the start");
  flags.Add("path", &path, "local|attached|own",
            "what the processes increment (see the top of local_bench.cc)");
  flags.Add("own-capacity", &own_capacity, "N", "capacity of the --path=own table");
  flags.Parse(argc, argv);
  const std::vector<int64_t> nkeys = ParseList(flags, "keys", keys_list, 1000000);
  const std::vector<int64_t> procs = ParseList(flags, "processes", procs_list, 64);
  if (!(seconds > 0) || !(warmup >= 0)) flags.Fail("--seconds must be > 0, --warmup >= 0");

  Target target;
  target.data_dir = data_dir;
  std::string own_dir;
  if (path == "local" || path == "attached") {
    if (data_dir.empty()) flags.Fail("--data-dir is required with --path=" + path);
    target.path = path == "local" ? Target::kLocal : Target::kAttached;
  } else if (path == "own") {
    target.path = Target::kOwn;
    own_dir = (std::filesystem::temp_directory_path() / "local-bench-XXXXXX").string();
    if (mkdtemp(own_dir.data()) == nullptr) Die(absl::StrCat("mkdtemp: ", std::strerror(errno)));
    absl::StatusOr<std::unique_ptr<CounterTable>> t =
        CounterTable::Create(own_dir + "/own.map", static_cast<uint64_t>(own_capacity));
    if (!t.ok()) Die(absl::StrCat("Create: ", t.status().ToString()));
    target.own = std::move(*t);
  } else {
    flags.Fail("--path must be local, attached or own; got '" + path + "'");
  }

  char head[96];
  std::snprintf(head, sizeof head, "{\"path\":\"%s\",\"seconds\":%.3f,\"cells\":[", path.c_str(),
                seconds);
  std::string json = head;
  for (int64_t k : nkeys) {
    for (int64_t p : procs) {
      RunCell(&target, CellConfig{k, static_cast<int>(p), warmup, seconds}, &json);
    }
  }
  json += "]}";
  std::printf("%s\n", json.c_str());
  if (!own_dir.empty()) {
    target.own.reset();
    std::error_code ec;
    std::filesystem::remove_all(own_dir, ec);
  }
  return 0;
}
