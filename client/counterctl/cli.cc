#include "client/counterctl/cli.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "client/counterctl/global_flags.h"
#include "client/counterctl/output.h"
#include "client/counterctl/suggest.h"
#include "client/counterctl/verbs.h"
#include "shared/key.h"

namespace countersd::ctl {
namespace {

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
  for (const FlagSpec& f : flags)
    rows.push_back({absl::StrCat("  ", FlagUsage(f)), std::string(f.help)});
  return FormatColumns(rows);
}

std::string UnknownVerb(absl::string_view word) {
  std::vector<std::string> names;
  for (const VerbSpec& v : AllVerbs()) names.emplace_back(v.name);
  const std::string guess = ClosestMatch(word, names);
  return guess.empty() ? absl::StrCat("unknown verb \"", word, "\"")
                       : absl::StrCat("unknown verb \"", word, "\"; did you mean \"", guess, "\"?");
}

std::string UnknownFlag(absl::string_view name, const VerbSpec* verb) {
  std::vector<std::string> names;
  for (const GlobalFlag& f : GlobalFlags()) names.emplace_back(f.spec.name);
  if (verb != nullptr) {
    for (const FlagSpec& f : verb->flags) names.emplace_back(f.name);
  }
  std::string message = absl::StrCat("unknown flag --", name);
  if (verb != nullptr) absl::StrAppend(&message, " for ", verb->name);
  if (const std::string guess = ClosestMatch(name, names); !guess.empty()) {
    absl::StrAppend(&message, "; did you mean --", guess, "?");
  }
  return message;
}

}  // namespace

std::string FlagUsage(const FlagSpec& flag) {
  std::string out = absl::StrCat("--", flag.name);
  if (!flag.value_name.empty()) absl::StrAppend(&out, "=", flag.value_name);
  return out;
}

std::vector<std::string> FlagChoices(const FlagSpec& flag) {
  if (flag.value_name.find('|') == absl::string_view::npos) return {};
  return absl::StrSplit(flag.value_name, '|');
}

absl::Status CheckFlagChoice(const FlagSpec& flag, absl::string_view value,
                             absl::string_view source) {
  const std::vector<std::string> choices = FlagChoices(flag);
  if (choices.empty() || std::find(choices.begin(), choices.end(), value) != choices.end()) {
    return absl::OkStatus();
  }
  std::string list = choices[0];
  for (size_t i = 1; i < choices.size(); ++i) {
    absl::StrAppend(&list, i + 1 == choices.size() ? " or " : ", ", choices[i]);
  }
  return absl::InvalidArgumentError(
      absl::StrCat(source, " must be ", list, ", got \"", value, "\""));
}

Environment ProcessEnvironment() {
  return [](const std::string& name) -> const char* { return std::getenv(name.c_str()); };
}

std::string Invocation::Flag(absl::string_view flag, absl::string_view fallback) const {
  auto it = flags.find(flag);
  return it == flags.end() ? std::string(fallback) : it->second;
}

const std::vector<VerbSpec>& AllVerbs() {
  static const std::vector<VerbSpec> verbs = [] {
    std::vector<VerbSpec> v = CounterVerbs();
    v.push_back(BatchVerb());
    for (VerbSpec& d : DaemonVerbs()) v.push_back(std::move(d));
    v.push_back(VersionVerb());
    v.push_back(BenchVerb());
    v.push_back(InspectVerb());
    v.push_back(TokenVerb());
    v.push_back(CompletionVerb());
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
  absl::StrAppend(&out, "\nGlobal flags:\n", GlobalFlagsHelp(),
                  "\nEach global flag can also be set in the variable shown; the command line\n"
                  "wins, and an empty variable is unset. $COUNTERS_TOKEN holds a token itself\n"
                  "(a token file wins).\n"
                  "\n"
                  "--attach=DIR: inc, dec, get, set, cas, del and batch attach to the table of\n"
                  "the daemon that owns DIR (same host, or a container sharing the volume; as\n"
                  "the daemon's user or its --attach-group) and print what they print over\n"
                  "gRPC; --timeout, tokens and TLS do not apply to them. The other verbs still\n"
                  "call the daemon at --addr, which must then be given too.\n"
                  "\n"
                  "Exit codes: 0 success, 1 server, transport or file error, 2 usage error,\n"
                  "3 not found, 4 not authenticated (no token, or one the daemon's auth file\n"
                  "does not list), 5 permission denied (the token's role or key prefixes do not\n"
                  "allow the call). Data goes to stdout, messages to stderr.\n"
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
  absl::StrAppend(&out, "\nGlobal flags:\n", GlobalFlagsHelp());
  return out;
}

absl::Status ParseCommandLine(const std::vector<std::string>& argv, const Environment& env,
                              Invocation* out) {
  Invocation& inv = *out;
  inv = Invocation{};
  std::map<std::string, std::string, std::less<>> globals;
  // The first usage error. Parsing goes on after it, so that the output
  // format is known when the error is reported.
  absl::Status first;
  auto fail = [&](std::string message) {
    if (first.ok()) first = absl::InvalidArgumentError(std::move(message));
  };
  bool flags_ended = false;
  bool verb_seen = false;
  for (size_t i = 1; i < argv.size(); ++i) {
    const std::string& t = argv[i];
    if (!flags_ended && t == "--") {
      flags_ended = true;
      continue;
    }
    const bool is_flag = !flags_ended && t.size() >= 2 && t[0] == '-' && !LooksNegativeNumber(t);
    if (!is_flag) {
      if (verb_seen) {
        inv.args.push_back(t);
      } else if (t == "help") {  // `counterctl help [VERB]`
        inv.help = true;
        if (i + 1 < argv.size()) {
          inv.verb = FindVerb(argv[i + 1]);
          if (inv.verb == nullptr) fail(UnknownVerb(argv[i + 1]));
        }
        break;
      } else {
        verb_seen = true;
        inv.verb = FindVerb(t);
        if (inv.verb == nullptr) fail(UnknownVerb(t));
      }
      continue;
    }
    absl::string_view name, value;
    bool has_value = false;
    const FlagSpec* spec = nullptr;
    bool global = false;
    if (t[1] != '-') {  // a short flag: -h, -o json, -ojson
      const GlobalFlag* g = FindGlobalShortFlag(t[1]);
      if (g == nullptr) {
        fail(absl::StrCat("unknown flag \"", t, "\" (flags are spelled --name)"));
        continue;
      }
      spec = &g->spec;
      global = true;
      name = spec->name;
      if (t.size() > 2) {
        has_value = true;
        value = absl::string_view(t).substr(t[2] == '=' ? 3 : 2);
      }
    } else {
      absl::string_view body = absl::string_view(t).substr(2);
      name = body;
      if (const size_t eq = body.find('='); eq != absl::string_view::npos) {
        name = body.substr(0, eq);
        value = body.substr(eq + 1);
        has_value = true;
      }
      if (const GlobalFlag* g = FindGlobalFlag(name)) {
        spec = &g->spec;
        global = true;
      } else if (inv.verb != nullptr) {
        spec = FindFlag(inv.verb->flags, name);
      }
      if (spec == nullptr) {
        fail(UnknownFlag(name, inv.verb));
        continue;
      }
    }
    std::string v;
    if (spec->value_name.empty()) {
      if (has_value) fail(absl::StrCat("flag --", name, " takes no value"));
    } else if (has_value) {
      v = std::string(value);
    } else if (i + 1 < argv.size() && !verb_seen && FindVerb(argv[i + 1]) != nullptr) {
      fail(absl::StrCat("flag --", name, " needs a value, and \"", argv[i + 1],
                        "\" is a verb, not one (write --", name, "=", spec->value_name,
                        " if that is meant)"));
      continue;
    } else if (i + 1 < argv.size()) {
      v = argv[++i];
    } else {
      fail(absl::StrCat("flag --", name, " needs a value (--", name, "=", spec->value_name, ")"));
      continue;
    }
    if (!global) {
      if (absl::Status s = CheckFlagChoice(*spec, v, absl::StrCat("--", name)); !s.ok()) {
        fail(std::string(s.message()));
        continue;
      }
    }
    (global ? globals : inv.flags)[std::string(name)] = std::move(v);
  }

  if (globals.count("help") > 0) inv.help = true;
  if (absl::Status s = ApplyGlobalFlags(globals, env, inv); !s.ok() && !inv.help) {
    if (first.ok()) first = s;
  }
  if (!first.ok() || inv.help) return first;
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
  return absl::OkStatus();
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

void ErrorJson(JsonWriter& j, absl::StatusCode code, absl::string_view message) {
  j.BeginObject().Field("code", absl::StatusCodeToString(code)).Field("message", message);
  j.EndObject();
}

int UsageError(const Invocation& inv, absl::string_view message) {
  if (inv.json()) {
    JsonWriter j;
    j.BeginObject().Key("error");
    ErrorJson(j, absl::StatusCode::kInvalidArgument, message);
    PrintData(j.EndObject().str() + "\n");
  }
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

std::string DescribeError(const Invocation& inv, const absl::Status& status) {
  if (inv.attached()) {  // no transport, no token: the table's own words
    if (status.code() != absl::StatusCode::kUnavailable &&
        status.code() != absl::StatusCode::kPermissionDenied) {
      return std::string(status.message());
    }
    return absl::StrCat("cannot attach to countersd in ", inv.attach_dir, " (", inv.attach_source,
                        "): ", status.message());
  }
  const std::string door = DescribeFailure(status, inv.security.tls());
  if (!door.empty()) {  // TLS, authentication, denial
    std::string message = absl::StrCat("countersd at ", inv.address, ": ", door);
    if (status.code() == absl::StatusCode::kUnauthenticated) {
      absl::StrAppend(&message, inv.token.empty()
                                    ? " (no token given: use --token-file or $COUNTERS_TOKEN)"
                                    : " (check the token in --token-file or $COUNTERS_TOKEN)");
    }
    return message;
  }
  switch (status.code()) {
    case absl::StatusCode::kUnavailable:
      return absl::StrCat("cannot reach countersd at ", inv.address, ": ", status.message());
    case absl::StatusCode::kDeadlineExceeded:
      return absl::StrCat("no answer from countersd at ", inv.address, " within ",
                          absl::FormatDuration(inv.timeout), " (--timeout): ", status.message());
    default:
      return std::string(status.message());
  }
}

int ExitCodeFor(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kNotFound:
      return kExitNotFound;
    case absl::StatusCode::kUnauthenticated:
      return kExitUnauthenticated;
    case absl::StatusCode::kPermissionDenied:
      return kExitPermissionDenied;
    default:
      return kExitError;
  }
}

int ReportError(const Invocation& inv, const absl::Status& status) {
  const std::string message = DescribeError(inv, status);
  if (inv.json()) {
    JsonWriter j;
    j.BeginObject().Key("error");
    ErrorJson(j, status.code(), message);
    PrintData(j.EndObject().str() + "\n");
  }
  PrintMessage(inv, message);
  return ExitCodeFor(status);
}

int Main(int argc, char** argv) {
  // Debian's Abseil is built with absl::Mutex deadlock detection on; gRPC
  // takes absl::Mutexes on every call, and the cycle bookkeeping
  // (GraphCycles) showed up at ~3% of bench's profile. We only consume locks.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  std::vector<std::string> args(argv, argv + argc);
  Invocation inv;
  if (absl::Status s = ParseCommandLine(args, ProcessEnvironment(), &inv); !s.ok()) {
    return UsageError(inv, s.message());
  }
  if (inv.help) {
    PrintData(inv.verb != nullptr ? VerbHelp(*inv.verb) : OverallHelp());
    return kExitOk;
  }
  if (inv.verb == nullptr) {
    if (inv.json()) return UsageError(inv, "no verb given");
    std::string help = OverallHelp();
    fwrite(help.data(), 1, help.size(), stderr);
    return kExitUsage;
  }
  const int code = inv.verb->run(inv);
  fflush(stdout);
  return code;
}

}  // namespace countersd::ctl
