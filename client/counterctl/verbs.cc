// The verbs that talk to a running countersd: inc, dec, get, set, cas, del,
// list, snapshot, health (stats.cc, batch.cc and version.cc hold the
// others). Each parses its arguments, makes one call (or one per key), and
// prints the result as text or JSON. inc, dec, get, set, cas and del call
// a CounterStore (counter_store.h), over gRPC or attached under --attach;
// the others a CounterClient.
#include "client/counterctl/verbs.h"

#include <algorithm>
#include <cstdlib>
#include <limits>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "client/client.h"
#include "client/counterctl/cli.h"
#include "client/counterctl/counter_store.h"
#include "client/counterctl/output.h"
#include "shared/limits.h"

namespace countersd::ctl {
namespace {

// BatchGet requests are cut into pieces this big, well under the server's
// default --max-batch.
constexpr size_t kGetChunk = 500;

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
  std::unique_ptr<CounterStore> store = OpenCounterStore(inv);
  absl::StatusOr<int64_t> value =
      inv.Has("durable") ? store->IncrementDurably(key, delta) : store->Increment(key, delta);
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
  std::unique_ptr<CounterStore> store = OpenCounterStore(inv);
  std::vector<CounterEntry> entries;
  for (size_t i = 0; i < inv.args.size(); i += kGetChunk) {
    std::vector<std::string> chunk(inv.args.begin() + i,
                                   inv.args.begin() + std::min(inv.args.size(), i + kGetChunk));
    absl::StatusOr<std::vector<CounterEntry>> got = store->BatchGet(chunk);
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
  absl::StatusOr<std::optional<int64_t>> previous = OpenCounterStore(inv)->Set(key, *value);
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
  absl::StatusOr<CompareAndSetResult> r =
      OpenCounterStore(inv)->CompareAndSet(key, *expected, *value);
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

// One Delete per key (the API has no batch delete), in argument order. A key
// that does not exist is reported and the others still deleted; any other
// failure stops there, before the keys after it. With one key the output is
// the one-key form (and the error document of a missing key).
int RunDel(const Invocation& inv) {
  int code;
  if (!KeysOk(inv, inv.args, &code)) return code;
  std::unique_ptr<CounterStore> store = OpenCounterStore(inv);
  struct Outcome {
    const std::string* key;
    absl::StatusOr<int64_t> previous;
  };
  std::vector<Outcome> done;
  for (const std::string& key : inv.args) {
    absl::StatusOr<int64_t> previous = store->Delete(key);
    if (!previous.ok() && previous.status().code() == absl::StatusCode::kNotFound) {
      previous = absl::NotFoundError(absl::StrCat("counter \"", key, "\" not found"));
    }
    const bool stop = !previous.ok() && previous.status().code() != absl::StatusCode::kNotFound;
    done.push_back({&key, std::move(previous)});
    if (stop) break;
  }
  if (inv.args.size() == 1) {
    const absl::StatusOr<int64_t>& previous = done[0].previous;
    if (!previous.ok()) return ReportError(inv, previous.status());
    if (inv.json()) {
      JsonWriter j;
      j.BeginObject().Field("key", inv.args[0]).Field("previous_value", *previous).EndObject();
      PrintData(j.str() + "\n");
    } else {
      PrintData(absl::StrCat("deleted (was ", *previous, ")\n"));
    }
    return kExitOk;
  }
  // The exit code: the failure that stopped the run, else 3 if a key was
  // missing, else 0.
  code = kExitOk;
  const absl::Status* failure = nullptr;
  for (const Outcome& o : done) {
    if (o.previous.ok()) continue;
    if (o.previous.status().code() == absl::StatusCode::kNotFound) {
      code = kExitNotFound;
    } else {
      failure = &o.previous.status();
    }
  }
  const size_t not_attempted = inv.args.size() - done.size();
  if (inv.json()) {
    JsonWriter j;
    j.BeginObject().Key("counters").BeginArray();
    for (const Outcome& o : done) {
      j.BeginObject().Field("key", *o.key).Field("deleted", o.previous.ok());
      if (o.previous.ok()) {
        j.Field("previous_value", *o.previous);
      } else {
        j.Key("error");
        ErrorJson(j, o.previous.status().code(), DescribeError(inv, o.previous.status()));
      }
      j.EndObject();
    }
    j.EndArray().Field("not_attempted", static_cast<int64_t>(not_attempted)).EndObject();
    PrintData(j.str() + "\n");
  } else {
    std::vector<std::vector<std::string>> rows;
    for (const Outcome& o : done) {
      rows.push_back({*o.key, o.previous.ok() ? absl::StrCat("deleted (was ", *o.previous, ")")
                              : o.previous.status().code() == absl::StatusCode::kNotFound
                                  ? std::string("(not found)")
                                  : absl::StrCat("failed: ", absl::StatusCodeToString(
                                                                 o.previous.status().code()))});
    }
    PrintData(FormatColumns(rows));
  }
  if (failure != nullptr) {
    PrintMessage(inv, absl::StrCat(DescribeError(inv, *failure), "; ", not_attempted,
                                   " key(s) after it not attempted"));
    return ExitCodeFor(*failure);
  }
  if (code == kExitNotFound) {
    std::vector<absl::string_view> missing;
    for (const Outcome& o : done) {
      if (!o.previous.ok()) missing.push_back(*o.key);
    }
    PrintMessage(inv, missing.size() == 1
                          ? absl::StrCat("counter \"", missing[0], "\" not found")
                          : absl::StrCat(missing.size(), " of ", inv.args.size(),
                                         " counters not found: \"", missing[0], "\", ..."));
  }
  return code;
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

std::string AttachRefusal(const Invocation& inv) {
  if (inv.attach_dir.empty() || inv.address_given) return "";
  return absl::StrCat(inv.attach_source, " does not apply to ", inv.verb->name,
                      ", which needs the daemon's RPCs: give --addr (or $COUNTERS_ADDR) too");
}

std::unique_ptr<CounterClient> Connect(const Invocation& inv) {
  if (const std::string refusal = AttachRefusal(inv); !refusal.empty()) {
    std::exit(UsageError(inv, refusal));
  }
  ClientOptions options;
  options.timeout = inv.timeout;
  options.bearer_token = inv.token;
  options.exactly_once = inv.exactly_once;
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = OpenChannel(inv);
  if (!channel.ok()) std::exit(ReportError(inv, channel.status()));  // files read at parse time
  return std::make_unique<CounterClient>(*std::move(channel), options);
}

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

std::vector<VerbSpec> CounterVerbs() {
  constexpr absl::string_view kCounters = kCountersGroup;
  return {
      {"inc",
       "KEY [DELTA]",
       "add DELTA (default 1) to KEY; print the new value",
       "Adds DELTA (default 1; may be negative) to counter KEY, creating it at 0\n"
       "first, and prints the new value. Fails with OUT_OF_RANGE, leaving the value\n"
       "unchanged, if the result would overflow a signed 64-bit integer.\n"
       "A lost connection or reply is retried within --timeout and the increment\n"
       "applied once (--exactly-once=on, the default). A failure with \"outcome\n"
       "unknown\" in its message (the timeout ran out) may or may not have been\n"
       "applied; running it again is a new increment. With --exactly-once=off it is\n"
       "not retried: a retry could count twice.\n"
       "With --durable the daemon answers only once the increment is on stable\n"
       "storage: a host crash or power loss right after it loses nothing (about one\n"
       "fsync of the daemon's disk; not with --attach).\n"
       "\n"
       "Examples:\n"
       "  counterctl inc requests          # +1\n"
       "  counterctl inc --durable payments 1\n"
       "  counterctl inc requests -3       # negative deltas are arguments, not flags\n"
       "  counterctl --output=json inc requests 10\n"
       "\n"
       "JSON: {\"key\":\"k\",\"value\":12}\n",
       {{"durable", "", "answer only once the increment is on stable storage"}},
       1,
       2,
       kCounters,
       RunInc,
       true},
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
       RunDec,
       true},
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
       RunGet,
       true},
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
       RunSet,
       true},
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
       RunCas,
       true},
      {"del",
       "KEY...",
       "delete counters; print the value each had",
       "Deletes each KEY (one call per key, in order) and prints the value it had.\n"
       "With one key prints \"deleted (was V)\"; with several, one aligned line per\n"
       "key. A key that does not exist is reported and the others are still deleted:\n"
       "exits 3 if any was missing. Any other failure (unreachable daemon, denial)\n"
       "stops there, the keys after it not attempted, with that failure's exit code.\n"
       "A lost connection or reply is retried within --timeout (--exactly-once):\n"
       "a retried delete that was applied still prints the value it deleted.\n"
       "\n"
       "JSON: {\"key\":\"k\",\"previous_value\":10} for one key (a missing one: the error)\n"
       "JSON with several keys: "
       "{\"counters\":[{\"key\":\"a\",\"deleted\":true,\"previous_value\":10},\n"
       "       "
       "{\"key\":\"b\",\"deleted\":false,\"error\":{\"code\":\"NOT_FOUND\",\"message\":..}}],\n"
       "       \"not_attempted\":0}\n",
       {},
       1,
       -1,
       kCounters,
       RunDel,
       true},
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
  };
}

std::vector<VerbSpec> DaemonVerbs() {
  constexpr absl::string_view kDaemon = kDaemonGroup;
  return {
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
      StatsVerb(),
      {"health",
       "",
       "check grpc.health.v1; exit 0 only if SERVING",
       "Calls grpc.health.v1.Health/Check and prints the serving status. Health\n"
       "needs no token (the daemon's access checks do not cover it).\n"
       "\n"
       "Exit codes:\n"
       "  0  SERVING\n"
       "  1  NOT_SERVING (or another status), or the daemon cannot be reached, or the\n"
       "     TLS handshake fails\n"
       "  2  usage error\n"
       "  3  the daemon knows no service --service (NOT_FOUND)\n"
       "\n"
       "Examples:\n"
       "  counterctl health\n"
       "  counterctl health --service=countersd.durability   # snapshots keep up\n"
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
