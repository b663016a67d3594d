// `counterctl version`: this client's version (countersd_version.h, the
// build's project version) and, when the daemon answers GetStats, the
// server's (GetStatsResponse.server_version). The client's line is printed
// whatever happens to the call: an unreachable daemon, or one that refuses
// the call, is said on the server's line and is no error (exit 0), so that
// `counterctl version` works without a daemon (or under --attach alone, the
// server's line saying that it needs --addr).
#include <string>

#include "absl/strings/str_cat.h"
#include "client/counterctl/output.h"
#include "client/counterctl/verbs.h"
#include "countersd_version.h"

namespace countersd::ctl {
namespace {

int RunVersion(const Invocation& inv) {
  // Under --attach alone the server's line says why it was not asked
  // (AttachRefusal): the client's version is still worth printing.
  const std::string refusal = AttachRefusal(inv);
  absl::StatusOr<counters::v1::GetStatsResponse> stats =
      refusal.empty()
          ? Connect(inv)->GetStats()
          : absl::StatusOr<counters::v1::GetStatsResponse>(absl::FailedPreconditionError(refusal));
  if (inv.json()) {
    JsonWriter j;
    j.BeginObject().Field("client", kVersion).Key("server");
    if (stats.ok()) {
      j.BeginObject().Field("address", inv.address);
      j.Field("version", stats->server_version()).EndObject();
    } else {
      j.BeginObject().Field("address", inv.address).Key("error");
      ErrorJson(j, stats.status().code(), DescribeError(inv, stats.status()));
      j.EndObject();
    }
    PrintData(j.EndObject().str() + "\n");
    return kExitOk;
  }
  std::string server;
  if (!stats.ok()) {
    server = absl::StrCat("unknown: ", DescribeError(inv, stats.status()));
  } else if (stats->server_version().empty()) {
    server = absl::StrCat("(not reported by countersd at ", inv.address, ")");
  } else {
    server = absl::StrCat(stats->server_version(), " (", inv.address, ")");
  }
  PrintData(FormatColumns({{"client", kVersion}, {"server", server}}));
  return kExitOk;
}

}  // namespace

VerbSpec VersionVerb() {
  return {
      "version",
      "",
      "print counterctl's version and the daemon's",
      "Prints counterctl's own version and the version of the countersd at --addr\n"
      "(from GetStats). If the daemon cannot be reached, or refuses the call, the\n"
      "server line says why instead; that is not an error: exits 0 (2 on a usage\n"
      "error). Waits at most --timeout for the daemon.\n"
      "\n"
      "Example:\n"
      "  counterctl --timeout=1s version\n"
      "\n"
      "JSON: {\"client\":\"0.1.0\",\"server\":{\"address\":..,\"version\":\"0.1.0\"}}\n"
      "      (unreachable: \"server\":{\"address\":..,\"error\":{\"code\":..,\"message\":..}})\n",
      {},
      0,
      0,
      kDaemonGroup,
      RunVersion};
}

}  // namespace countersd::ctl
