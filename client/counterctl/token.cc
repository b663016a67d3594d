// `counterctl token new`: a new random bearer token and the auth-file line
// that admits it; `counterctl token hash`: the line for the token counterctl
// was given (--token-file, $COUNTERS_TOKEN_FILE, $COUNTERS_TOKEN), as the container's entrypoint
// makes its auth file. Offline: they talk to no daemon, and the daemon never
// sees a token until a client sends it (the file stores only its SHA-256).
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "client/counterctl/output.h"
#include "client/counterctl/verbs.h"
#include "shared/bearer_token.h"

namespace countersd::ctl {
namespace {

int RunToken(const Invocation& inv) {
  const bool fresh = inv.args[0] == "new";
  if (!fresh && inv.args[0] != "hash") {
    return UsageError(inv, absl::StrCat("unknown token command \"", inv.args[0],
                                        "\" (expected: token new, token hash)"));
  }
  if (!fresh && inv.token.empty()) {
    return UsageError(
        inv, "token hash: no token given (--token-file, $COUNTERS_TOKEN_FILE or $COUNTERS_TOKEN)");
  }
  const std::string role = inv.Flag("role", "read");  // one of --role's choices
  std::vector<std::string> prefixes =
      absl::StrSplit(inv.Flag("prefixes"), absl::ByAnyChar(" ,"), absl::SkipEmpty());
  for (const std::string& p : prefixes) {
    if (absl::Status s = CheckKeyArg(p); !s.ok()) {
      return UsageError(
          inv, absl::StrCat("--prefixes: \"", p, "\" is not a valid key prefix: ", s.message()));
    }
  }
  absl::StatusOr<std::string> token = fresh ? NewBearerToken() : inv.token;
  if (!token.ok()) return ReportError(inv, token.status());
  const std::string principal = TokenPrincipal(*token);
  std::string line = absl::StrCat(principal, " ", role);
  if (!prefixes.empty()) absl::StrAppend(&line, " ", absl::StrJoin(prefixes, " "));
  if (inv.json()) {
    JsonWriter j;
    j.BeginObject();
    if (fresh) j.Field("token", *token);
    j.Field("principal", principal).Field("auth_file_line", line).EndObject();
    PrintData(j.str() + "\n");
  } else {
    PrintData(fresh ? absl::StrCat(*token, "\n", line, "\n") : absl::StrCat(line, "\n"));
  }
  return kExitOk;
}

}  // namespace

VerbSpec TokenVerb() {
  return {
      "token",
      "new|hash",
      "print a new random bearer token and its auth-file line",
      "Prints a new bearer token (32 random bytes from the kernel's generator,\n"
      "base64url: 43 characters) on the first line, and on the second the line that\n"
      "admits it in countersd's --auth-file: token:sha256:<its SHA-256> ROLE\n"
      "[PREFIXES]. The daemon stores only the hash; the token is the client's\n"
      "secret: keep it in a file only its user can read (--token-file) or in\n"
      "$COUNTERS_TOKEN. Add the line to the auth file, then send countersd SIGHUP\n"
      "(systemctl reload countersd) to load it. Talks to no daemon.\n"
      "\n"
      "`token hash` prints only the auth-file line of the token given with\n"
      "--token-file, $COUNTERS_TOKEN_FILE or $COUNTERS_TOKEN (the container image's\n"
      "entrypoint makes its auth file so).\n"
      "\n"
      "Example:\n"
      "  counterctl token new --role=write --prefixes=jobs/,quota/ > t && \\\n"
      "    head -1 t > ~/.counters-token && tail -1 t >> /etc/countersd/auth && rm t\n"
      "\n"
      "JSON: {\"token\":.. (new only),\"principal\":\"token:sha256:..\",\"auth_file_line\":..}\n",
      {{"role", "read|write|admin", "read (default), write or admin, for the printed line"},
       {"prefixes", "LIST",
        "key prefixes for the printed line, comma- or space-separated "
        "(default: none, every key)"}},
      1,
      1,
      kOfflineGroup,
      RunToken};
}

}  // namespace countersd::ctl
