// counterctl's global flags: the one table of them, from which the parser,
// the help, the bash completion and the COUNTERS_<FLAG> environment
// variables are all made.
//
// How a global flag gets its value:
//  1. The command line (--name=VALUE, --name VALUE, or the short form -o VALUE
//     / -oVALUE where the flag has one) wins.
//  2. Else its variable COUNTERS_<NAME> (upper case, '-' as '_': --token-file
//     is COUNTERS_TOKEN_FILE), if set and not empty.
//  3. Else the default.
// Every value is checked the same way whatever its source; an error names the
// flag (--timeout) or the variable ($COUNTERS_TIMEOUT) it came from.
// $COUNTERS_TOKEN (the token itself, not a file) is the token when neither
// --token-file nor $COUNTERS_TOKEN_FILE gives one.
#ifndef COUNTERSD_CLIENT_COUNTERCTL_GLOBAL_FLAGS_H_
#define COUNTERSD_CLIENT_COUNTERCTL_GLOBAL_FLAGS_H_

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "client/counterctl/cli.h"

namespace countersd::ctl {

struct GlobalFlag {
  FlagSpec spec;
  char short_name = 0;  // 'o' for -o; 0: none
  // Checks `value` and stores it in `inv`. `source` names where it came
  // from ("--timeout" or "$COUNTERS_TIMEOUT") for the error message. Null for
  // --help, which the parser handles and which has no variable.
  absl::Status (*apply)(const std::string& value, absl::string_view source,
                        Invocation& inv) = nullptr;
};

// Every global flag, in help order.
const std::vector<GlobalFlag>& GlobalFlags();
// Null if there is no such flag.
const GlobalFlag* FindGlobalFlag(absl::string_view name);
const GlobalFlag* FindGlobalShortFlag(char short_name);

// "COUNTERS_TOKEN_FILE" for --token-file; empty for a flag with no variable
// (--help).
std::string EnvironmentVariable(const GlobalFlag& flag);

// Gives every global flag its value (see the top of this file): `given` holds
// the command line's, by flag name. Applies them all even after an error,
// so that a valid --output still holds when another flag is bad; returns the
// first error (INVALID_ARGUMENT), and checks that --cert and --key go
// together.
absl::Status ApplyGlobalFlags(const std::map<std::string, std::string, std::less<>>& given,
                              const Environment& env, Invocation& inv);

// The "Global flags:" rows of the help: each flag, its short form and its
// variable.
std::string GlobalFlagsHelp();

// OK if `address` is HOST:PORT (a port from 1 to 65535; an IPv6 host in
// brackets) or unix:PATH; INVALID_ARGUMENT saying what is missing.
absl::Status CheckAddress(absl::string_view address);

}  // namespace countersd::ctl

#endif  // COUNTERSD_CLIENT_COUNTERCTL_GLOBAL_FLAGS_H_
