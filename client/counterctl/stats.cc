// `counterctl stats`: GetStats as aligned text or one JSON document: the
// server's version, uptime and restarts, the table, the last snapshot, the
// durability lag, the connections, each handler, and each attached process.
#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/counterctl/output.h"
#include "client/counterctl/verbs.h"

namespace countersd::ctl {
namespace {

std::string FormatUnixSeconds(int64_t s) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixSeconds(s), absl::UTCTimeZone());
}

void ConnectionsJson(JsonWriter& j, const counters::v1::ConnectionStats& c) {
  j.Key("connections").BeginObject().Field("accepted", c.accepted());
  j.Field("refused_over_cap", c.refused_over_cap());
  j.Field("handshake_timeouts", c.handshake_timeouts()).Field("open", c.open()).EndObject();
}

int RunStats(const Invocation& inv) {
  absl::StatusOr<counters::v1::GetStatsResponse> r = Connect(inv)->GetStats();
  if (!r.ok()) return ReportError(inv, r.status());
  if (inv.json()) {
    JsonWriter j;
    j.BeginObject();
    j.Field("server_version", r->server_version()).Field("uptime_seconds", r->uptime_seconds());
    j.Key("restarts").BeginArray();
    for (const auto& p : r->restarts()) {
      j.BeginObject().Field("role", p.role()).Field("reason", p.reason());
      j.Field("count", p.count()).EndObject();
    }
    j.EndArray();
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
    ConnectionsJson(j, r->connections());
    j.Key("handlers").BeginArray();
    for (const auto& h : r->handlers()) {
      j.BeginObject().Field("pid", static_cast<int64_t>(h.pid())).Field("calls", h.calls());
      j.Field("errors", h.errors());
      ConnectionsJson(j, h.connections());
      j.EndObject();
    }
    j.EndArray();
    j.Key("attachers").BeginArray();
    for (const auto& a : r->attachers()) {
      j.BeginObject().Field("slot", static_cast<uint64_t>(a.slot()));
      j.Field("pid", static_cast<int64_t>(a.pid())).Field("uid", static_cast<uint64_t>(a.uid()));
      j.Field("current", a.current()).Field("attached_unix_seconds", a.attached_unix_seconds());
      j.Key("calls").BeginObject();
      for (const auto& c : a.calls()) j.Field(c.method(), c.count());
      j.EndObject().Field("failures", a.failures()).EndObject();
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
  const counters::v1::ConnectionStats& c = r->connections();
  std::string out = FormatColumns({
      {"address", inv.address},
      {"version", r->server_version().empty() ? "(not reported)" : r->server_version()},
      {"uptime", FormatUptime(r->uptime_seconds())},
      {"restarts", RestartsText(*r)},
      {"served by", absl::StrCat("pid ", r->served_by_pid())},
      {"capacity", WithThousands(r->capacity())},
      {"used", absl::StrFormat("%s (%.1f%%)", WithThousands(r->used()), used_pct)},
      {"last snapshot", snapshot},
      {"durability", durability},
      {"connections",
       absl::StrCat(WithThousands(c.open()), " open; since start ", WithThousands(c.accepted()),
                    " accepted, ", WithThousands(c.refused_over_cap()), " refused over the cap, ",
                    WithThousands(c.handshake_timeouts()), " handshake timeouts")},
  });
  std::vector<std::vector<std::string>> rows = {
      {"PID", "CALLS", "ERRORS", "OPEN", "ACCEPTED", "REFUSED", "TIMEOUTS"}};
  for (const auto& h : r->handlers()) {
    const auto& hc = h.connections();
    rows.push_back({absl::StrCat(h.pid()), WithThousands(h.calls()), WithThousands(h.errors()),
                    WithThousands(hc.open()), WithThousands(hc.accepted()),
                    WithThousands(hc.refused_over_cap()), WithThousands(hc.handshake_timeouts())});
  }
  absl::StrAppend(&out, "\nhandlers (", r->handlers_size(), "):\n");
  for (const absl::string_view line :
       absl::StrSplit(FormatColumns(rows, std::vector<bool>(7, true)), '\n', absl::SkipEmpty())) {
    absl::StrAppend(&out, "  ", line, "\n");
  }
  absl::StrAppend(&out, "\n", AttachersText(*r));
  PrintData(out);
  return kExitOk;
}

}  // namespace

std::string FormatUptime(uint64_t s) {
  const uint64_t parts[] = {s / 86400, s / 3600 % 24, s / 60 % 60, s % 60};
  const char* units[] = {"d", "h", "m", "s"};
  std::string out;
  for (int i = 0; i < 4; ++i) {
    if (out.empty() && parts[i] == 0 && i < 3) continue;
    absl::StrAppend(&out, out.empty() ? "" : " ", parts[i], units[i]);
  }
  return out;
}

std::string RestartsText(const counters::v1::GetStatsResponse& r) {
  if (r.restarts_size() == 0) return "none";
  std::string out;
  std::string role;
  for (const auto& p : r.restarts()) {
    if (p.role() != role || out.empty()) {
      absl::StrAppend(&out, out.empty() ? "" : "; ", p.role(), " ");
      role = p.role();
    } else {
      out.append(", ");
    }
    absl::StrAppend(&out, WithThousands(p.count()), " ", p.reason());
  }
  return out;
}

std::string AttachersText(const counters::v1::GetStatsResponse& r) {
  if (r.attachers_size() == 0) return "attachers: none\n";
  std::vector<std::vector<std::string>> rows = {
      {"SLOT", "PID", "UID", "STATE", "ATTACHED", "FAILURES", "CALLS"}};
  for (const auto& a : r.attachers()) {
    std::string calls;
    for (const auto& c : a.calls()) {
      absl::StrAppend(&calls, calls.empty() ? "" : ", ", c.method(), " ", WithThousands(c.count()));
    }
    // A stale one attached to an earlier daemon: its next call is refused.
    rows.push_back({absl::StrCat(a.slot()), absl::StrCat(a.pid()), absl::StrCat(a.uid()),
                    a.current() ? "current" : "stale", FormatUnixSeconds(a.attached_unix_seconds()),
                    WithThousands(a.failures()), calls.empty() ? "none" : calls});
  }
  std::string out = absl::StrCat("attachers (", r.attachers_size(), "):\n");
  const std::vector<bool> right = {true, true, true, false, false, true, false};
  for (const absl::string_view line :
       absl::StrSplit(FormatColumns(rows, right), '\n', absl::SkipEmpty())) {
    absl::StrAppend(&out, "  ", line, "\n");
  }
  return out;
}

VerbSpec StatsVerb() {
  return {
      "stats",
      "",
      "show handler and table statistics",
      "Shows the server's version, how long the daemon has run (uptime) and the\n"
      "processes its supervisor restarted since it started (per role and reason),\n"
      "the table's capacity and use, the last snapshot, the durability lag\n"
      "(how old the oldest change is that no durable snapshot holds yet, and the\n"
      "snapshot failures), the client connections (open now; accepted, refused\n"
      "over --max-connections and closed at the handshake timeout since the daemon\n"
      "started, handlers that were restarted included), and the calls, errors and\n"
      "connections of each handler process (since it started), and the processes\n"
      "attached to the table (local attach): each one's slot, pid (in its own pid\n"
      "namespace), uid, whether it attached to this daemon (current) or to an\n"
      "earlier one (stale: its next call is refused), when it attached, and its\n"
      "calls by method and failed calls since.\n"
      "\n"
      "JSON: "
      "{\"server_version\":\"..\",\"uptime_seconds\":..,\"restarts\":[{\"role\":..,\"reason\":..,\n"
      "      "
      "\"count\":..}],\"served_by_pid\":..,\"capacity\":..,\"used\":..,\"last_snapshot\":{"
      "\"generation\":..,\n"
      "      "
      "\"unix_seconds\":..,\"micros\":..,\"bytes\":..},\"durability\":{[\"oldest_undurable_"
      "change_age_seconds\":..,]\n"
      "      "
      "\"consecutive_snapshot_failures\":..,\"snapshot_failures\":..},\"connections\":CONN,\n"
      "      \"handlers\":[{\"pid\":..,\"calls\":..,\"errors\":..,\"connections\":CONN}],\n"
      "      \"attachers\":[{\"slot\":..,\"pid\":..,\"uid\":..,\"current\":true,"
      "\"attached_unix_seconds\":..,\n"
      "      \"calls\":{\"Increment\":..},\"failures\":..}]}\n"
      "CONN: {\"accepted\":..,\"refused_over_cap\":..,\"handshake_timeouts\":..,\"open\":..}\n",
      {},
      0,
      0,
      kDaemonGroup,
      RunStats};
}

}  // namespace countersd::ctl
