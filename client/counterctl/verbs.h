// The verbs of counterctl, one group per file, and what the verbs that call
// the daemon share.
#ifndef COUNTERSD_CLIENT_COUNTERCTL_VERBS_H_
#define COUNTERSD_CLIENT_COUNTERCTL_VERBS_H_

#include <memory>
#include <string>
#include <vector>

#include "client/client.h"
#include "client/counterctl/cli.h"

namespace countersd::ctl {

// Group headings of the overall help, in its order.
inline constexpr absl::string_view kCountersGroup = "Counters";
inline constexpr absl::string_view kDaemonGroup = "Daemon";
inline constexpr absl::string_view kOfflineGroup = "Offline";

// inc, dec, get, set, cas, del, list (verbs.cc).
std::vector<VerbSpec> CounterVerbs();
// batch (batch.cc): KEY DELTA lines as one atomic IncrementBatch, or --pipe.
VerbSpec BatchVerb();
// snapshot, stats (StatsVerb), health (verbs.cc).
std::vector<VerbSpec> DaemonVerbs();
// stats (stats.cc).
VerbSpec StatsVerb();
// stats' text: an uptime, "0s", "5m 3s", "2d 0h 0m 7s" (the largest unit
// first, none left out after it); the restarts, "none" or per role in the
// server's order, "handler 2 signaled, 1 stalled; aggregator 1 exited".
std::string FormatUptime(uint64_t seconds);
std::string RestartsText(const counters::v1::GetStatsResponse& stats);
// stats' attached processes: "attachers: none", or "attachers (N):" and a
// table, one row per slot (pid, uid, current or stale, attached since,
// failures, calls by method).
std::string AttachersText(const counters::v1::GetStatsResponse& stats);
// version (version.cc): the client's and the server's.
VerbSpec VersionVerb();
// bench (bench.cc): the load generator.
VerbSpec BenchVerb();
// inspect PATH (inspect.cc): offline, never writes the file.
VerbSpec InspectVerb();
// token new (token.cc): a new bearer token and its auth-file line.
VerbSpec TokenVerb();
// completion bash (completion.cc): a completion script made from AllVerbs().
VerbSpec CompletionVerb();
// The script `completion bash` prints.
std::string BashCompletionScript();

// A client for inv's address, security, token and timeout. Exits (1, with
// ReportError) if the channel cannot be made; the files were readable at
// parse time. Exits 2 (UsageError) with AttachRefusal's message if it has one.
std::unique_ptr<CounterClient> Connect(const Invocation& inv);

// Under --attach without --addr (or $COUNTERS_ADDR): the usage error of a
// verb that needs the daemon's RPCs (list, snapshot, stats, health, bench,
// version's server line), which attaching cannot make. The address is not
// defaulted there: --attach names one daemon, and the default address may
// be another's (or none's). Empty otherwise.
std::string AttachRefusal(const Invocation& inv);

// Checks KEY arguments locally, so that a bad key is a usage error (exit 2)
// naming the rule, before any connection is made. False (and *exit_code
// set, the error reported) at the first bad key.
bool KeysOk(const Invocation& inv, const std::vector<std::string>& keys, int* exit_code);

}  // namespace countersd::ctl

#endif  // COUNTERSD_CLIENT_COUNTERCTL_VERBS_H_
