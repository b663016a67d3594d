// The verbs that talk to a running countersd: inc, dec, get, set, cas, del,
// list, snapshot, stats, health. Each parses its arguments, makes one
// CounterClient call (or a few), and prints the result as text or JSON.
#include "client/counterctl/verbs.h"

#include <cinttypes>
#include <cstdlib>
#include <limits>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/client.h"
#include "client/counterctl/cli.h"
#include "client/counterctl/output.h"
#include "shared/limits.h"

namespace countersd::ctl {
namespace {

// BatchGet requests are cut into pieces this big, well under the server's
// default --max-batch.
constexpr size_t kGetChunk = 500;

std::unique_ptr<CounterClient> Connect(const Invocation& inv) {
  ClientOptions options;
  options.timeout = inv.timeout;
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = OpenChannel(inv);
  if (!channel.ok()) {  // the files were readable at parse time
    PrintMessage(inv, channel.status().message());
    std::exit(kExitError);
  }
  return std::make_unique<CounterClient>(*std::move(channel), options);
}

// Validates KEY arguments locally, so a bad key is a usage error (exit 2)
// with the rule named, before any connection is made.
bool KeysOk(const Invocation& inv, const std::vector<std::string>& keys, int* exit_code) {
  for (const std::string& key : keys) {
    absl::Status s = CheckKeyArg(key);
    if (!s.ok()) {
      *exit_code = UsageError(inv, absl::StrCat("bad KEY \"", key, "\": ", s.message()));
      return false;
    }
  }
  return true;
}

int RunIncrement(const Invocation& inv, bool negate) {
  int code;
  const std::string& key = inv.args[0];
  if (!KeysOk(inv, {key}, &code)) return code;
  int64_t delta = 1;
  if (inv.args.size() > 1) {
    absl::StatusOr<int64_t> d = ParseInt64Arg(inv.args[1], "DELTA");
    if (!d.ok()) return UsageError(inv, d.status().message());
    delta = *d;
  }
  if (negate) {
    if (delta == std::numeric_limits<int64_t>::min()) {
      return UsageError(inv, "DELTA -9223372036854775808 cannot be negated; use inc");
    }
    delta = -delta;
  }
  absl::StatusOr<int64_t> value = Connect(inv)->Increment(key, delta);
  if (!value.ok()) return ReportError(inv, value.status());
  if (inv.json()) {
    JsonWriter j;
    j.BeginObject().Field("key", key).Field("value", *value).EndObject();
    PrintData(j.str() + "\n");
  } else {
    PrintData(absl::StrCat(*value, "\n"));
  }
  return kExitOk;
}

int RunInc(const Invocation& inv) { return RunIncrement(inv, false); }
int RunDec(const Invocation& inv) { return RunIncrement(inv, true); }

int RunGet(const Invocation& inv) {
  int code;
  if (!KeysOk(inv, inv.args, &code)) return code;
  std::unique_ptr<CounterClient> client = Connect(inv);
  std::vector<CounterEntry> entries;
  for (size_t i = 0; i < inv.args.size(); i += kGetChunk) {
    std::vector<std::string> chunk(inv.args.begin() + i,
                                   inv.args.begin() + std::min(inv.args.size(), i + kGetChunk));
    absl::StatusOr<std::vector<CounterEntry>> got = client->BatchGet(chunk);
    if (!got.ok()) return ReportError(inv, got.status());
    for (CounterEntry& e : *got) entries.push_back(std::move(e));
  }
  std::vector<std::string> missing;
  for (const CounterEntry& e : entries) {
    if (!e.found) missing.push_back(e.key);
  }
  if (inv.json()) {
    JsonWriter j;
    j.BeginObject().Key("counters").BeginArray();
    for (const CounterEntry& e : entries) {
      j.BeginObject()
          .Field("key", e.key)
          .Field("value", e.value)
          .Field("found", e.found)
          .EndObject();
    }
    j.EndArray().EndObject();
    PrintData(j.str() + "\n");
  } else if (entries.size() == 1) {
    if (entries[0].found) PrintData(absl::StrCat(entries[0].value, "\n"));
  } else {
    std::vector<std::vector<std::string>> rows;
    rows.reserve(entries.size());
    for (const CounterEntry& e : entries) {
      rows.push_back({e.key, e.found ? absl::StrCat(e.value) : "(not found)"});
    }
    PrintData(FormatColumns(rows, {false, true}));
  }
  if (missing.empty()) return kExitOk;
  if (missing.size() == 1) {
    PrintMessage(inv, absl::StrCat("counter \"", missing[0], "\" not found"));
  } else {
    PrintMessage(inv, absl::StrCat(missing.size(), " of ", entries.size(),
                                   " counters not found: \"", missing[0], "\", ..."));
  }
  return kExitNotFound;
}

int RunSet(const Invocation& inv) {
  int code;
  const std::string& key = inv.args[0];
  if (!KeysOk(inv, {key}, &code)) return code;
  absl::StatusOr<int64_t> value = ParseInt64Arg(inv.args[1], "VALUE");
  if (!value.ok()) return UsageError(inv, value.status().message());
  absl::StatusOr<std::optional<int64_t>> previous = Connect(inv)->Set(key, *value);
  if (!previous.ok()) return ReportError(inv, previous.status());
  if (inv.json()) {
    JsonWriter j;
    j.BeginObject().Field("key", key).Field("value", *value).Key("previous_value");
    if (previous->has_value()) {
      j.Int(**previous);
    } else {
      j.Null();
    }
    j.EndObject();
    PrintData(j.str() + "\n");
  } else if (previous->has_value()) {
    PrintData(absl::StrCat(*value, " (was ", **previous, ")\n"));
  } else {
    PrintData(absl::StrCat(*value, " (new counter)\n"));
  }
  return kExitOk;
}

int RunCas(const Invocation& inv) {
  int code;
  const std::string& key = inv.args[0];
  if (!KeysOk(inv, {key}, &code)) return code;
  absl::StatusOr<int64_t> expected = ParseInt64Arg(inv.args[1], "EXPECTED");
  if (!expected.ok()) return UsageError(inv, expected.status().message());
  absl::StatusOr<int64_t> value = ParseInt64Arg(inv.args[2], "VALUE");
  if (!value.ok()) return UsageError(inv, value.status().message());
  absl::StatusOr<CompareAndSetResult> r = Connect(inv)->CompareAndSet(key, *expected, *value);
  if (!r.ok()) return ReportError(inv, r.status());
  if (inv.json()) {
    JsonWriter j;
    j.BeginObject().Field("key", key).Field("applied", r->applied).Field("value", r->value);
    j.Field("expected", *expected).EndObject();
    PrintData(j.str() + "\n");
  } else if (r->applied) {
    PrintData(absl::StrCat("applied: ", r->value, "\n"));
  } else {
    PrintData(absl::StrCat("not applied: the value is ", r->value, ", not ", *expected, "\n"));
  }
  return kExitOk;
}

int RunDel(const Invocation& inv) {
  int code;
  const std::string& key = inv.args[0];
  if (!KeysOk(inv, {key}, &code)) return code;
  absl::StatusOr<int64_t> previous = Connect(inv)->Delete(key);
  if (!previous.ok()) {
    if (previous.status().code() == absl::StatusCode::kNotFound) {
      return ReportError(inv, absl::NotFoundError(absl::StrCat("counter \"", key, "\" not found")));
    }
    return ReportError(inv, previous.status());
  }
  if (inv.json()) {
    JsonWriter j;
    j.BeginObject().Field("key", key).Field("previous_value", *previous).EndObject();
    PrintData(j.str() + "\n");
  } else {
    PrintData(absl::StrCat("deleted (was ", *previous, ")\n"));
  }
  return kExitOk;
}

int RunList(const Invocation& inv) {
  const std::string prefix = inv.args.empty() ? "" : inv.args[0];
  size_t limit = 0;
  if (inv.Has("limit")) {
    absl::StatusOr<int64_t> l = ParsePositiveFlag(inv.Flag("limit"), "limit", 1 << 30);
    if (!l.ok()) return UsageError(inv, l.status().message());
    limit = static_cast<size_t>(*l);
  }
  // Page through the listing ourselves so that --limit stops early.
  std::unique_ptr<CounterClient> client = Connect(inv);
  std::vector<CounterEntry> all;
  std::string token;
  bool truncated = false;
  while (true) {
    absl::StatusOr<ListPage> page = client->List(prefix, kMaxListPageSize, token);
    if (!page.ok()) return ReportError(inv, page.status());
    for (CounterEntry& e : page->counters) {
      if (limit > 0 && all.size() == limit) {
        truncated = true;
        break;
      }
      all.push_back(std::move(e));
    }
    if (truncated || page->next_page_token.empty() || page->next_page_token == token) break;
    if (limit > 0 && all.size() == limit) {  // more may follow
      truncated = true;
      break;
    }
    token = std::move(page->next_page_token);
  }
  if (inv.json()) {
    JsonWriter j;
    j.BeginObject().Field("prefix", prefix).Key("counters").BeginArray();
    for (const CounterEntry& e : all) {
      j.BeginObject().Field("key", e.key).Field("value", e.value).EndObject();
    }
    j.EndArray().Field("truncated", truncated).EndObject();
    PrintData(j.str() + "\n");
  } else {
    std::vector<std::vector<std::string>> rows;
    rows.reserve(all.size());
    for (const CounterEntry& e : all) rows.push_back({e.key, absl::StrCat(e.value)});
    PrintData(FormatColumns(rows, {false, true}));
    if (truncated) PrintMessage(inv, absl::StrCat("stopped after --limit=", limit, " counters"));
  }
  return kExitOk;
}

int RunSnapshot(const Invocation& inv) {
  absl::StatusOr<SnapshotResult> r = Connect(inv)->Snapshot();
  if (!r.ok()) return ReportError(inv, r.status());
  if (inv.json()) {
    JsonWriter j;
    j.BeginObject().Field("generation", r->generation).Field("counters", r->counters);
    j.Field("bytes", r->bytes).EndObject();
    PrintData(j.str() + "\n");
  } else {
    PrintData(absl::StrCat("snapshot generation ", r->generation,
                           " is durable: ", WithThousands(r->counters), " counters, ",
                           WithThousands(r->bytes), " bytes\n"));
  }
  return kExitOk;
}

std::string FormatUnixSeconds(int64_t s) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixSeconds(s), absl::UTCTimeZone());
}

int RunStats(const Invocation& inv) {
  absl::StatusOr<counters::v1::GetStatsResponse> r = Connect(inv)->GetStats();
  if (!r.ok()) return ReportError(inv, r.status());
  if (inv.json()) {
    JsonWriter j;
    j.BeginObject();
    j.Field("served_by_pid", static_cast<int64_t>(r->served_by_pid()));
    j.Field("capacity", r->capacity()).Field("used", r->used());
    j.Key("last_snapshot").BeginObject();
    j.Field("generation", r->last_snapshot_generation());
    j.Field("unix_seconds", r->last_snapshot_unix_seconds());
    j.Field("micros", r->last_snapshot_micros()).Field("bytes", r->last_snapshot_bytes());
    j.EndObject();
    j.Key("durability").BeginObject();
    if (r->has_oldest_undurable_change_age_seconds()) {
      j.Field("oldest_undurable_change_age_seconds", r->oldest_undurable_change_age_seconds());
    }
    j.Field("consecutive_snapshot_failures", r->consecutive_snapshot_failures());
    j.Field("snapshot_failures", r->snapshot_failures());
    j.EndObject();
    j.Key("handlers").BeginArray();
    for (const auto& h : r->handlers()) {
      j.BeginObject().Field("pid", static_cast<int64_t>(h.pid())).Field("calls", h.calls());
      j.Field("errors", h.errors()).EndObject();
    }
    j.EndArray().EndObject();
    PrintData(j.str() + "\n");
    return kExitOk;
  }
  const double used_pct =
      r->capacity() == 0 ? 0.0 : 100.0 * static_cast<double>(r->used()) / r->capacity();
  std::string snapshot = "none yet";
  if (r->last_snapshot_generation() > 0) {
    const int64_t age = absl::ToUnixSeconds(absl::Now()) - r->last_snapshot_unix_seconds();
    snapshot = absl::StrFormat(
        "generation %d at %s (%ds ago), %s bytes in %.2f ms", r->last_snapshot_generation(),
        FormatUnixSeconds(r->last_snapshot_unix_seconds()), std::max<int64_t>(age, 0),
        WithThousands(r->last_snapshot_bytes()), r->last_snapshot_micros() / 1000.0);
  }
  // The durability lag (README, "Health and readiness").
  std::string durability = "every change is in a durable snapshot";
  if (r->has_oldest_undurable_change_age_seconds()) {
    durability = absl::StrCat(
        "oldest change not yet durable: ", r->oldest_undurable_change_age_seconds(), "s ago");
  }
  if (r->consecutive_snapshot_failures() > 0) {
    absl::StrAppend(&durability, "; ", r->consecutive_snapshot_failures(),
                    " snapshot attempts failed in a row");
  }
  absl::StrAppend(&durability, " (", WithThousands(r->snapshot_failures()), " failed since start)");
  std::string out = FormatColumns({
      {"address", inv.address},
      {"served by", absl::StrCat("pid ", r->served_by_pid())},
      {"capacity", WithThousands(r->capacity())},
      {"used", absl::StrFormat("%s (%.1f%%)", WithThousands(r->used()), used_pct)},
      {"last snapshot", snapshot},
      {"durability", durability},
  });
  std::vector<std::vector<std::string>> rows = {{"PID", "CALLS", "ERRORS"}};
  for (const auto& h : r->handlers()) {
    rows.push_back({absl::StrCat(h.pid()), WithThousands(h.calls()), WithThousands(h.errors())});
  }
  absl::StrAppend(&out, "\nhandlers (", r->handlers_size(), "):\n");
  for (const absl::string_view line :
       absl::StrSplit(FormatColumns(rows, {true, true, true}), '\n', absl::SkipEmpty())) {
    absl::StrAppend(&out, "  ", line, "\n");
  }
  PrintData(out);
  return kExitOk;
}

int RunHealth(const Invocation& inv) {
  const std::string service = inv.Flag("service");
  absl::StatusOr<ServingStatus> r = Connect(inv)->Health(service);
  if (!r.ok()) return ReportError(inv, r.status());
  if (inv.json()) {
    JsonWriter j;
    j.BeginObject().Field("service", service).Field("status", ServingStatusName(*r)).EndObject();
    PrintData(j.str() + "\n");
  } else {
    PrintData(absl::StrCat(ServingStatusName(*r), "\n"));
  }
  if (*r != ServingStatus::kServing) {
    PrintMessage(inv, absl::StrCat("countersd at ", inv.address, " is not serving"));
    return kExitError;
  }
  return kExitOk;
}

}  // namespace

std::vector<VerbSpec> ServerVerbs() {
  constexpr absl::string_view kCounters = "Counters";
  constexpr absl::string_view kDaemon = "Daemon";
  return {
      {"inc",
       "KEY [DELTA]",
       "add DELTA (default 1) to KEY; print the new value",
       "Adds DELTA (default 1; may be negative) to counter KEY, creating it at 0\n"
       "first, and prints the new value. Fails with OUT_OF_RANGE, leaving the value\n"
       "unchanged, if the result would overflow a signed 64-bit integer.\n"
       "Not retried on a transport error: a retry could count twice.\n"
       "\n"
       "Examples:\n"
       "  counterctl inc requests          # +1\n"
       "  counterctl inc requests -3       # negative deltas are arguments, not flags\n"
       "  counterctl --output=json inc requests 10\n"
       "\n"
       "JSON: {\"key\":\"k\",\"value\":12}\n",
       {},
       1,
       2,
       kCounters,
       RunInc},
      {"dec",
       "KEY [DELTA]",
       "subtract DELTA (default 1) from KEY; print the new value",
       "Subtracts DELTA (default 1) from counter KEY, creating it at 0 first, and\n"
       "prints the new value. `dec k 5` is `inc k -5`.\n"
       "\n"
       "JSON: {\"key\":\"k\",\"value\":7}\n",
       {},
       1,
       2,
       kCounters,
       RunDec},
      {"get",
       "KEY...",
       "print the value of one or more counters",
       "Prints the value of each KEY. With one key, prints just the value; with\n"
       "several, one aligned \"KEY VALUE\" line per key, in argument order.\n"
       "Exits 3 if any counter does not exist (the others are still printed).\n"
       "\n"
       "Examples:\n"
       "  v=$(counterctl get requests)\n"
       "  counterctl get requests errors quota/alice\n"
       "\n"
       "JSON: {\"counters\":[{\"key\":\"k\",\"value\":12,\"found\":true},...]}\n",
       {},
       1,
       -1,
       kCounters,
       RunGet},
      {"set",
       "KEY VALUE",
       "set KEY to VALUE; print it and the previous value",
       "Sets counter KEY to VALUE, creating it if needed, and prints the new value\n"
       "and the one it replaced.\n"
       "\n"
       "JSON: {\"key\":\"k\",\"value\":10,\"previous_value\":7}  (null: new counter)\n",
       {},
       2,
       2,
       kCounters,
       RunSet},
      {"cas",
       "KEY EXPECTED VALUE",
       "set KEY to VALUE only if it holds EXPECTED",
       "Compare-and-set: sets counter KEY to VALUE only if it currently holds\n"
       "EXPECTED (a missing counter counts as 0). Prints whether it applied and the\n"
       "value now stored. Exits 0 either way; check \"applied\".\n"
       "\n"
       "JSON: {\"key\":\"k\",\"applied\":true,\"value\":10,\"expected\":7}\n",
       {},
       3,
       3,
       kCounters,
       RunCas},
      {"del",
       "KEY",
       "delete KEY; print the value it had",
       "Deletes counter KEY and prints the value it had. Exits 3 if it does not\n"
       "exist.\n"
       "\n"
       "JSON: {\"key\":\"k\",\"previous_value\":10}\n",
       {},
       1,
       1,
       kCounters,
       RunDel},
      {"list",
       "[PREFIX]",
       "list counters (whose key starts with PREFIX), sorted",
       "Lists every counter whose key starts with PREFIX (default: all), sorted by\n"
       "key, one aligned \"KEY VALUE\" line each. Pages through the server's List;\n"
       "the result is not one point-in-time view.\n"
       "\n"
       "Examples:\n"
       "  counterctl list quota/\n"
       "  counterctl --output=json list | jq '.counters[] | select(.value < 0)'\n"
       "\n"
       "JSON: "
       "{\"prefix\":\"p\",\"counters\":[{\"key\":\"p1\",\"value\":3},...],\"truncated\":false}\n",
       {{"limit", "N", "stop after N counters (default: no limit)"}},
       0,
       1,
       kCounters,
       RunList},
      {"snapshot",
       "",
       "write a durable snapshot now; print its generation",
       "Asks the daemon to write a snapshot of every counter and waits until it is\n"
       "durable on disk (msync'ed). Prints the generation, counters and bytes.\n"
       "\n"
       "JSON: {\"generation\":7,\"counters\":3,\"bytes\":81}\n",
       {},
       0,
       0,
       kDaemon,
       RunSnapshot},
      {"stats",
       "",
       "show handler and table statistics",
       "Shows the table's capacity and use, the last snapshot, the durability lag\n"
       "(how old the oldest change is that no durable snapshot holds yet, and the\n"
       "snapshot failures), and the calls and errors of each handler process.\n"
       "\n"
       "JSON: "
       "{\"served_by_pid\":..,\"capacity\":..,\"used\":..,\"last_snapshot\":{\"generation\":..,\n"
       "      "
       "\"unix_seconds\":..,\"micros\":..,\"bytes\":..},\"durability\":{[\"oldest_undurable_"
       "change_age_seconds\":..,]\n"
       "      "
       "\"consecutive_snapshot_failures\":..,\"snapshot_failures\":..},\"handlers\":[{\"pid\":"
       "..,\"calls\":..,\"errors\":..}]}\n",
       {},
       0,
       0,
       kDaemon,
       RunStats},
      {"health",
       "",
       "check grpc.health.v1; exit 0 only if SERVING",
       "Calls grpc.health.v1.Health/Check and prints the serving status. Exits 0 if\n"
       "SERVING, 1 otherwise (also when the daemon cannot be reached).\n"
       "\n"
       "JSON: {\"service\":\"\",\"status\":\"SERVING\"}\n",
       {{"service", "NAME", "service to check (default \"\": the whole server)"}},
       0,
       0,
       kDaemon,
       RunHealth},
  };
}

}  // namespace countersd::ctl
