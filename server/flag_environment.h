// countersd's flags from the environment: COUNTERSD_<FLAG>.
//
// How it works (ParseFlagsOrExit, config.cc, calls it after the command
// line, so that a flag on the command line wins):
//  1. Each of countersd's own flags (config.cc's table; never Abseil's
//     built-in ones) has one variable: "COUNTERSD_" and the flag's name in
//     upper case with '-' as '_' (--max-connections: COUNTERSD_MAX_CONNECTIONS).
//  2. For each flag not given on the command line whose variable is set and
//     not empty (an empty one counts as unset, as `Environment=X=` and
//     compose's `X=${UNSET}` make it), the value is parsed exactly as the
//     text after "--flag=" (CommandLineFlag::ParseFrom): a list flag takes
//     the same comma-separated list, a boolean true or false. A value that
//     does not parse is an error naming the variable and the value.
//  3. Every other variable whose name starts with COUNTERSD_ (in any case)
//     is a warning logged at start, naming it and, when a flag's variable
//     is close (edit distance), suggesting it: a typo is never silent, and
//     the daemon never refuses to start because of a variable another tool
//     set. A few names this project's own files use for other things are
//     not warned about (kOtherToolsVariables in flag_environment.cc).
#ifndef COUNTERSD_SERVER_FLAG_ENVIRONMENT_H_
#define COUNTERSD_SERVER_FLAG_ENVIRONMENT_H_

#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace countersd {

// "max_connections" (or "max-connections") -> "COUNTERSD_MAX_CONNECTIONS".
std::string FlagVariable(std::string_view flag_name);

struct FlagEnvironment {
  std::vector<std::string> applied;   // flag names (with '_') set from their variable
  std::vector<std::string> warnings;  // one log line's message per unknown COUNTERSD_ variable
};

// Steps 2 and 3 over `envp` (NAME=value strings, null-terminated, e.g.
// environ) for the registered Abseil flags named in `flag_names`, skipping
// those in `given`. INVALID_ARGUMENT naming the variable, its value, the
// flag and the parse error if a value does not parse; flags set before the
// bad one keep their new values (the caller exits).
absl::StatusOr<FlagEnvironment> ApplyFlagEnvironment(absl::Span<const char* const> flag_names,
                                                     const std::set<std::string>& given,
                                                     char** envp);

// For an error message about flags: " (--handlers is from
// COUNTERSD_HANDLERS)" for each flag of `applied` the message names
// without its variable; "" if none.
std::string EnvironmentNote(std::string_view message, const std::vector<std::string>& applied);

// Where flag `flag_name` given came from: its variable if `applied` has it,
// else "--flag-name" (the command line).
std::string FlagSource(std::string_view flag_name, const std::vector<std::string>& applied);

// The --help paragraph on environment variables.
std::string FlagEnvironmentHelp();

}  // namespace countersd

#endif  // COUNTERSD_SERVER_FLAG_ENVIRONMENT_H_
