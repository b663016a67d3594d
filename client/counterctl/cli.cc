#include "client/counterctl/cli.h"

#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "client/counterctl/output.h"
#include "client/counterctl/verbs.h"
#include "shared/key.h"

namespace countersd::ctl {
namespace {

const std::vector<FlagSpec>& GlobalFlags() {
  static const std::vector<FlagSpec> flags = {
      {"addr", "ADDR",
       "countersd address, host:port or unix:/path (default $COUNTERS_ADDR, else "
       "127.0.0.1:50051)"},
      // Transport security (TLS, mTLS).
      {"cacert", "FILE", "TLS: verify the server against these PEM CA certificates"},
      {"cert", "FILE", "mTLS: this PEM client certificate (with --key); turns TLS on"},
      {"key", "FILE", "mTLS: the private key of --cert"},
      {"timeout", "DURATION", "deadline of each call, e.g. 500ms, 5s, 1m (default 5s)"},
      {"output", "FORMAT", "text (default) or json: one JSON document on stdout"},
      {"help", "", "show help (also -h); `counterctl VERB --help` for a verb"},
  };
  return flags;
}

const FlagSpec* FindFlag(const std::vector<FlagSpec>& flags, absl::string_view name) {
  for (const FlagSpec& f : flags) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

// "-5", "-0" are numbers, never flags.
bool LooksNegativeNumber(absl::string_view t) {
  return t.size() >= 2 && t[0] == '-' && std::isdigit(static_cast<unsigned char>(t[1]));
}

std::string FlagsHelp(const std::vector<FlagSpec>& flags) {
  std::vector<std::vector<std::string>> rows;
  for (const FlagSpec& f : flags) {
    std::string left = absl::StrCat("  --", f.name);
    if (!f.value_name.empty()) absl::StrAppend(&left, "=", f.value_name);
    rows.push_back({left, std::string(f.help)});
  }
  return FormatColumns(rows);
}

}  // namespace

std::string Invocation::Flag(absl::string_view flag, absl::string_view fallback) const {
  auto it = flags.find(flag);
  return it == flags.end() ? std::string(fallback) : it->second;
}

const std::vector<VerbSpec>& AllVerbs() {
  static const std::vector<VerbSpec> verbs = [] {
    std::vector<VerbSpec> v = ServerVerbs();
    v.push_back(BenchVerb());
    v.push_back(InspectVerb());
    return v;
  }();
  return verbs;
}

const VerbSpec* FindVerb(absl::string_view name) {
  for (const VerbSpec& v : AllVerbs()) {
    if (v.name == name) return &v;
  }
  return nullptr;
}

std::string OverallHelp() {
  std::string out =
      "counterctl: command-line client for countersd, the shared-counter daemon.\n"
      "\n"
      "Usage: counterctl [GLOBAL FLAGS] VERB [ARGS...] [FLAGS...]\n";
  absl::string_view group;
  std::vector<std::vector<std::string>> rows;
  auto flush = [&] {
    if (!rows.empty()) out.append(FormatColumns(rows));
    rows.clear();
  };
  for (const VerbSpec& v : AllVerbs()) {
    if (v.group != group) {
      flush();
      group = v.group;
      absl::StrAppend(&out, "\n", group, ":\n");
    }
    rows.push_back({absl::StrCat("  ", v.name, " ", v.synopsis), std::string(v.summary)});
  }
  flush();
  absl::StrAppend(&out, "\nGlobal flags:\n", FlagsHelp(GlobalFlags()),
                  "\n"
                  "Exit codes: 0 success, 1 server, transport or file error, 2 usage error,\n"
                  "3 not found. Data goes to stdout, messages to stderr.\n"
                  "Negative numbers are arguments, not flags (counterctl inc k -3); put keys\n"
                  "that start with '-' after \"--\".\n"
                  "\n"
                  "Run 'counterctl VERB --help' for a verb's details and flags.\n");
  return out;
}

std::string VerbHelp(const VerbSpec& verb) {
  std::string out = absl::StrCat("Usage: counterctl ", verb.name);
  if (!verb.synopsis.empty()) absl::StrAppend(&out, " ", verb.synopsis);
  if (!verb.flags.empty()) absl::StrAppend(&out, " [FLAGS]");
  absl::StrAppend(&out, "\n\n", verb.description);
  if (!verb.description.empty() && verb.description.back() != '\n') out.push_back('\n');
  if (!verb.flags.empty()) absl::StrAppend(&out, "\nFlags:\n", FlagsHelp(verb.flags));
  absl::StrAppend(&out, "\nGlobal flags:\n", FlagsHelp(GlobalFlags()));
  return out;
}

absl::StatusOr<Invocation> ParseCommandLine(const std::vector<std::string>& argv,
                                            const char* env_address) {
  Invocation inv;
  inv.address =
      env_address != nullptr && *env_address != '\0' ? env_address : std::string(kDefaultAddress);
  std::map<std::string, std::string, std::less<>> globals;
  bool flags_ended = false;
  for (size_t i = 1; i < argv.size(); ++i) {
    const std::string& t = argv[i];
    const bool is_flag = !flags_ended && t.size() >= 2 && t[0] == '-' && !LooksNegativeNumber(t);
    if (!flags_ended && t == "--") {
      flags_ended = true;
      continue;
    }
    if (!is_flag) {
      if (inv.verb == nullptr) {
        if (t == "help") {  // `counterctl help [VERB]`
          inv.help = true;
          if (i + 1 < argv.size()) {
            inv.verb = FindVerb(argv[i + 1]);
            if (inv.verb == nullptr) {
              return absl::InvalidArgumentError(absl::StrCat("unknown verb \"", argv[i + 1], "\""));
            }
          }
          return inv;
        }
        inv.verb = FindVerb(t);
        if (inv.verb == nullptr) {
          return absl::InvalidArgumentError(absl::StrCat("unknown verb \"", t, "\""));
        }
      } else {
        inv.args.push_back(t);
      }
      continue;
    }
    absl::string_view body = t;
    if (body == "-h") body = "--help";
    if (body.substr(0, 2) != "--") {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown flag \"", t, "\" (flags are spelled --name)"));
    }
    body.remove_prefix(2);
    absl::string_view name = body, value;
    const size_t eq = body.find('=');
    const bool has_value = eq != absl::string_view::npos;
    if (has_value) {
      name = body.substr(0, eq);
      value = body.substr(eq + 1);
    }
    const FlagSpec* spec = FindFlag(GlobalFlags(), name);
    const bool global = spec != nullptr;
    if (spec == nullptr && inv.verb != nullptr) spec = FindFlag(inv.verb->flags, name);
    if (spec == nullptr) {
      if (inv.verb == nullptr) {
        return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name));
      }
      return absl::InvalidArgumentError(
          absl::StrCat("unknown flag --", name, " for ", inv.verb->name));
    }
    std::string v;
    if (spec->value_name.empty()) {
      if (has_value) {
        return absl::InvalidArgumentError(absl::StrCat("flag --", name, " takes no value"));
      }
    } else if (has_value) {
      v = std::string(value);
    } else if (i + 1 < argv.size()) {
      v = argv[++i];
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("flag --", name, " needs a value (--", name, "=", spec->value_name, ")"));
    }
    (global ? globals : inv.flags)[std::string(name)] = std::move(v);
  }

  inv.help = globals.count("help") > 0;
  if (inv.help) return inv;
  if (auto it = globals.find("addr"); it != globals.end()) {
    if (it->second.empty()) return absl::InvalidArgumentError("--addr must not be empty");
    inv.address = it->second;
  }
  for (auto [flag, field] : {std::pair{"cacert", &inv.security.ca_file},
                             std::pair{"cert", &inv.security.cert_file},
                             std::pair{"key", &inv.security.key_file}}) {
    auto it = globals.find(flag);
    if (it == globals.end()) continue;
    if (access(it->second.c_str(), R_OK) != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", flag, "=", it->second, ": cannot read: ", strerror(errno)));
    }
    *field = it->second;
  }
  if (inv.security.cert_file.empty() != inv.security.key_file.empty()) {
    return absl::InvalidArgumentError("--cert and --key go together");
  }
  if (auto it = globals.find("timeout"); it != globals.end()) {
    absl::StatusOr<absl::Duration> d = ParseDurationArg(it->second, "--timeout");
    if (!d.ok()) return d.status();
    inv.timeout = *d;
  }
  if (auto it = globals.find("output"); it != globals.end()) {
    if (it->second == "json") {
      inv.output = OutputFormat::kJson;
    } else if (it->second != "text") {
      return absl::InvalidArgumentError(
          absl::StrCat("--output must be text or json, got \"", it->second, "\""));
    }
  }
  if (inv.verb != nullptr) {
    const int n = static_cast<int>(inv.args.size());
    if (n < inv.verb->min_args) {
      return absl::InvalidArgumentError(
          absl::StrCat("missing arguments: expected ", inv.verb->synopsis));
    }
    if (inv.verb->max_args >= 0 && n > inv.verb->max_args) {
      return absl::InvalidArgumentError(
          absl::StrCat("too many arguments for ", inv.verb->name, " (expected ",
                       inv.verb->synopsis.empty() ? "none" : inv.verb->synopsis, "): \"",
                       inv.args[inv.verb->max_args], "\""));
    }
  }
  return inv;
}

absl::StatusOr<int64_t> ParseInt64Arg(absl::string_view text, absl::string_view what) {
  int64_t v;
  if (!absl::SimpleAtoi(text, &v) || text.empty() ||
      absl::ascii_isspace(static_cast<unsigned char>(text.front())) ||
      absl::ascii_isspace(static_cast<unsigned char>(text.back()))) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " must be a signed 64-bit integer, got \"", text, "\""));
  }
  return v;
}

absl::StatusOr<int64_t> ParsePositiveFlag(absl::string_view text, absl::string_view flag,
                                          int64_t max) {
  int64_t v;
  if (!absl::SimpleAtoi(text, &v) || v <= 0 || v > max) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, " must be an integer from 1 to ", max, ", got \"", text, "\""));
  }
  return v;
}

absl::StatusOr<absl::Duration> ParseDurationArg(absl::string_view text, absl::string_view what) {
  absl::Duration d;
  double seconds;
  if (absl::SimpleAtod(text, &seconds) && !text.empty() &&
      std::isdigit(static_cast<unsigned char>(text.back()))) {
    d = absl::Seconds(seconds);
  } else if (!absl::ParseDuration(text, &d)) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " must be a duration such as 500ms, 5s or 1m, got \"", text, "\""));
  }
  if (d <= absl::ZeroDuration() || d == absl::InfiniteDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " must be positive and finite, got \"", text, "\""));
  }
  return d;
}

absl::Status CheckKeyArg(absl::string_view key) {
  return ValidateKey(std::string_view(key.data(), key.size()));
}

void PrintData(absl::string_view text) { fwrite(text.data(), 1, text.size(), stdout); }

void PrintMessage(const Invocation& inv, absl::string_view message) {
  std::string line = inv.verb != nullptr
                         ? absl::StrCat("counterctl ", inv.verb->name, ": ", message, "\n")
                         : absl::StrCat("counterctl: ", message, "\n");
  fflush(stdout);
  fwrite(line.data(), 1, line.size(), stderr);
}

int UsageError(const Invocation& inv, absl::string_view message) {
  PrintMessage(inv, message);
  std::string hint = inv.verb != nullptr
                         ? absl::StrCat("Run 'counterctl ", inv.verb->name, " --help' for usage.\n")
                         : std::string("Run 'counterctl --help' for usage.\n");
  fwrite(hint.data(), 1, hint.size(), stderr);
  return kExitUsage;
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> OpenChannel(const Invocation& inv,
                                                           grpc::ChannelArguments args) {
  return CreateCounterChannel(inv.address, inv.security, std::move(args));
}

int ReportError(const Invocation& inv, const absl::Status& status) {
  std::string message(status.message());
  const std::string door = DescribeFailure(status, inv.security.tls());
  if (!door.empty()) {
    message = absl::StrCat("countersd at ", inv.address, ": ", door);
  } else switch (status.code()) {
    case absl::StatusCode::kUnavailable:
      message = absl::StrCat("cannot reach countersd at ", inv.address, ": ", status.message());
      break;
    case absl::StatusCode::kDeadlineExceeded:
      message = absl::StrCat("no answer from countersd at ", inv.address, " within ",
                             absl::FormatDuration(inv.timeout), " (--timeout): ", status.message());
      break;
    default:
      break;
  }
  if (inv.json()) {
    JsonWriter j;
    j.BeginObject().Key("error").BeginObject();
    j.Field("code", absl::StatusCodeToString(status.code()));
    j.Field("message", message);
    j.EndObject().EndObject();
    PrintData(j.str() + "\n");
  }
  PrintMessage(inv, message);
  return status.code() == absl::StatusCode::kNotFound ? kExitNotFound : kExitError;
}

int Main(int argc, char** argv) {
  // Debian's Abseil is built with absl::Mutex deadlock detection on; gRPC
  // takes absl::Mutexes on every call, and the cycle bookkeeping
  // (GraphCycles) showed up at ~3% of bench's profile. We only consume locks.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  std::vector<std::string> args(argv, argv + argc);
  absl::StatusOr<Invocation> inv =
      ParseCommandLine(args, std::getenv(std::string(kAddressEnv).c_str()));
  if (!inv.ok()) {
    // Name the verb in the message when we got that far.
    Invocation partial;
    for (size_t i = 1; i < args.size(); ++i) {
      if (const VerbSpec* v = FindVerb(args[i])) {
        partial.verb = v;
        break;
      }
    }
    return UsageError(partial, inv.status().message());
  }
  if (inv->help) {
    PrintData(inv->verb != nullptr ? VerbHelp(*inv->verb) : OverallHelp());
    return kExitOk;
  }
  if (inv->verb == nullptr) {
    std::string help = OverallHelp();
    fwrite(help.data(), 1, help.size(), stderr);
    return kExitUsage;
  }
  const int code = inv->verb->run(*inv);
  fflush(stdout);
  return code;
}

}  // namespace countersd::ctl
