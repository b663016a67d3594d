// counterctl's command line: verbs, flags, help, exit codes.
//
//   counterctl [GLOBAL FLAGS] VERB [ARGS...] [FLAGS...]
//
// Parsing rules (a small parser of our own, because absl flags has no
// per-verb flags or help, and must not eat negative numbers):
//  - "--name=value" and "--name value" set a flag; boolean flags take no
//    value. "-h" is "--help", "-o json" (or "-ojson") "--output=json".
//    Global flags may appear anywhere (global_flags.h: each can also be set
//    as COUNTERS_<FLAG>); a verb's own flags after the verb.
//  - Before the verb, a flag's value in the "--name value" form may not be
//    a verb name: `counterctl --addr get x` is a usage error saying so, not
//    a call to address "get".
//  - A token that starts with '-' followed by a digit ("-5") is an argument,
//    never a flag, so `counterctl inc k -3` and `counterctl set k -5` work.
//  - "--" ends the flags: everything after it is an argument (for keys that
//    start with '-').
//  - Unknown verbs and flags (with a "did you mean" when one is close), a
//    missing flag value and a wrong number of arguments are usage errors
//    (exit 2), reported on stderr with a pointer to --help, and under
//    --output=json also as {"error":{"code":"INVALID_ARGUMENT",...}} on
//    stdout.
#ifndef COUNTERSD_CLIENT_COUNTERCTL_CLI_H_
#define COUNTERSD_CLIENT_COUNTERCTL_CLI_H_

#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "client/channel.h"

namespace countersd::ctl {

// Process exit codes; part of counterctl's interface.
enum ExitCode : int {
  kExitOk = 0,
  kExitError = 1,             // the server or the transport failed, or a file is invalid
  kExitUsage = 2,             // bad command line
  kExitNotFound = 3,          // a counter (or file) does not exist
  kExitUnauthenticated = 4,   // the daemon knows no such credentials (UNAUTHENTICATED)
  kExitPermissionDenied = 5,  // the credentials' role or key prefixes do not allow it
};

inline constexpr absl::string_view kDefaultAddress = "127.0.0.1:50051";
// The bearer token itself, when neither --token-file nor $COUNTERS_TOKEN_FILE
// gives one.
inline constexpr absl::string_view kTokenEnv = "COUNTERS_TOKEN";

// An environment variable's value, or null if unset.
using Environment = std::function<const char*(const std::string& name)>;
// The process's own (getenv).
Environment ProcessEnvironment();

enum class OutputFormat { kText, kJson };

struct FlagSpec {
  absl::string_view name;        // without "--"
  absl::string_view value_name;  // empty: a boolean flag that takes no value
  absl::string_view help;
};

// "--name=VALUE" (or "--name" for a boolean flag), as help and completion
// show it.
std::string FlagUsage(const FlagSpec& flag);

// A flag whose value_name is a choice ("text|json") takes only those words:
// the parser (and, for a global flag, its variable) checks it, and
// completion offers them. `text|json`: {"text", "json"}; empty for any other
// value_name.
std::vector<std::string> FlagChoices(const FlagSpec& flag);
// OK if `value` is allowed; else INVALID_ARGUMENT "SOURCE must be text or
// json, got \"x\"" (`source` is "--output" or "$COUNTERS_OUTPUT").
absl::Status CheckFlagChoice(const FlagSpec& flag, absl::string_view value,
                             absl::string_view source);

struct Invocation;

struct VerbSpec {
  absl::string_view name;
  absl::string_view synopsis;     // arguments, e.g. "KEY [DELTA]"
  absl::string_view summary;      // one line, for the overall help
  absl::string_view description;  // paragraphs for `VERB --help`
  std::vector<FlagSpec> flags;
  int min_args = 0;
  int max_args = 0;         // -1: no limit
  absl::string_view group;  // heading in the overall help
  int (*run)(const Invocation&) = nullptr;
  // --attach=DIR applies: the verb's calls go to the attached table
  // (counter_store.h). The other verbs that call the daemon need --addr
  // beside --attach (AttachRefusal, verbs.h).
  bool attaches = false;
};

// A parsed command line.
struct Invocation {
  const VerbSpec* verb = nullptr;  // null for a bare `counterctl` or `--help`
  std::vector<std::string> args;
  std::map<std::string, std::string, std::less<>> flags;  // the verb's own flags
  bool help = false;
  std::string address = std::string(kDefaultAddress);  // --addr, else $COUNTERS_ADDR
  bool address_given = false;  // by --addr or $COUNTERS_ADDR, not the default
  // --attach=DIR, else $COUNTERS_ATTACH (a directory, checked at parse time):
  // the counter verbs attach to the table of the daemon that owns DIR
  // instead of calling it (counter_store.h). Empty: over gRPC.
  std::string attach_dir;
  std::string attach_source;  // "--attach" or "$COUNTERS_ATTACH", for messages
  // Transport security: --cacert, --cert, --key (files checked readable at
  // parse time).
  ConnectionSecurity security;
  // Sent as "authorization: Bearer <token>": --token-file's contents
  // (surrounding white space removed), else $COUNTERS_TOKEN_FILE's, else
  // $COUNTERS_TOKEN; empty: none.
  std::string token;
  absl::Duration timeout = absl::Seconds(5);
  // --exactly-once, else $COUNTERS_EXACTLY_ONCE: ClientOptions::exactly_once
  // of every CounterClient the verbs make (client.h, "Mutations").
  bool exactly_once = true;
  OutputFormat output = OutputFormat::kText;

  bool json() const { return output == OutputFormat::kJson; }
  // Whether this verb's calls go to the attached table, not over gRPC.
  bool attached() const { return !attach_dir.empty() && verb != nullptr && verb->attaches; }
  bool Has(absl::string_view flag) const { return flags.find(flag) != flags.end(); }
  // The flag's value, or `fallback` if it was not given.
  std::string Flag(absl::string_view flag, absl::string_view fallback = {}) const;
};

// Every verb, in help order.
const std::vector<VerbSpec>& AllVerbs();
const VerbSpec* FindVerb(absl::string_view name);

// Parses argv[1..], the global flags' variables read from `env`, into
// *inv. INVALID_ARGUMENT with a one-line message on a usage error (including
// a bad variable, named, and a --token-file that cannot be read or is
// empty); *inv then holds what was understood (the verb, a valid output
// format) so that the error is reported as the user asked.
absl::Status ParseCommandLine(const std::vector<std::string>& argv, const Environment& env,
                              Invocation* inv);

// Help texts (end with a newline).
std::string OverallHelp();
std::string VerbHelp(const VerbSpec& verb);

// Runs counterctl; returns the exit code.
int Main(int argc, char** argv);

// ---- Helpers for verbs. ----

// Parses a signed 64-bit integer argument named `what` ("DELTA").
absl::StatusOr<int64_t> ParseInt64Arg(absl::string_view text, absl::string_view what);
// Parses a positive integer flag value (at most `max`).
absl::StatusOr<int64_t> ParsePositiveFlag(absl::string_view text, absl::string_view flag,
                                          int64_t max);
// "5s", "250ms", "1m"; a bare number is seconds. Must be > 0.
absl::StatusOr<absl::Duration> ParseDurationArg(absl::string_view text, absl::string_view what);
// OK if `key` is a valid counter key; INVALID_ARGUMENT naming the rule.
absl::Status CheckKeyArg(absl::string_view key);

// A channel to inv.address with inv.security. The error names the file.
absl::StatusOr<std::shared_ptr<grpc::Channel>> OpenChannel(const Invocation& inv,
                                                           grpc::ChannelArguments args = {});

// Prints "counterctl VERB: MESSAGE" and the --help hint to stderr (and, in
// JSON mode, {"error":{"code":"INVALID_ARGUMENT","message":...}} on stdout);
// returns 2.
int UsageError(const Invocation& inv, absl::string_view message);

// Reports a failed call: "counterctl VERB: MESSAGE" on stderr, and in JSON
// mode {"error":{"code":"NOT_FOUND","message":"..."}} on stdout so that the
// invocation still prints one JSON document. Returns 3 for NOT_FOUND, 4 for
// UNAUTHENTICATED, 5 for PERMISSION_DENIED, else 1. UNAVAILABLE and
// DEADLINE_EXCEEDED messages name the address and timeout; a TLS failure,
// an authentication failure and a denial each say so (DescribeFailure,
// client/channel.h), and UNAUTHENTICATED says where the token came from and
// how to give one.
int ReportError(const Invocation& inv, const absl::Status& status);
// ReportError's message for `status` (the address, the timeout, the door;
// attached, the data directory).
std::string DescribeError(const Invocation& inv, const absl::Status& status);
// The exit code of a failed call: 3 NOT_FOUND, 4 UNAUTHENTICATED,
// 5 PERMISSION_DENIED, else 1.
int ExitCodeFor(const absl::Status& status);
// Writes {"code":"NOT_FOUND","message":MESSAGE} as the next value of `j`.
class JsonWriter;
void ErrorJson(JsonWriter& j, absl::StatusCode code, absl::string_view message);

// Writes `text` to stdout (the data channel).
void PrintData(absl::string_view text);
// Writes "counterctl VERB: MESSAGE\n" to stderr.
void PrintMessage(const Invocation& inv, absl::string_view message);

}  // namespace countersd::ctl

#endif  // COUNTERSD_CLIENT_COUNTERCTL_CLI_H_
