#include "client/counterctl/global_flags.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "client/counterctl/output.h"

namespace countersd::ctl {
namespace {

absl::Status Bad(absl::string_view source, absl::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat(source, ": ", message));
}

// The token in `path`: its contents without surrounding white space.
absl::StatusOr<std::string> ReadTokenFile(const std::string& path, absl::string_view source) {
  std::FILE* f = std::fopen(path.c_str(), "re");
  if (f == nullptr) {
    return Bad(source, absl::StrCat("cannot open ", path, ": ", std::strerror(errno)));
  }
  std::string text;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0 && text.size() < 65536) text.append(buf, n);
  std::fclose(f);
  std::string token(absl::StripAsciiWhitespace(text));
  if (token.empty()) return Bad(source, absl::StrCat(path, " is empty"));
  if (token.find_first_of(" \t\r\n") != std::string::npos) {
    return Bad(source,
               absl::StrCat(path, " holds more than one word; it must hold the token alone"));
  }
  return token;
}

absl::Status ApplyAddress(const std::string& v, absl::string_view source, Invocation& inv) {
  if (v.empty()) return absl::InvalidArgumentError(absl::StrCat(source, " must not be empty"));
  if (absl::Status s = CheckAddress(v); !s.ok()) {
    return Bad(source, absl::StrCat("\"", v, "\" ", s.message()));
  }
  inv.address = v;
  inv.address_given = true;
  return absl::OkStatus();
}

// The directory must exist: a mistyped one is a usage error naming it, not
// the attach's "no daemon owns it". Whether a daemon owns it is found when
// a verb attaches (UNAVAILABLE).
absl::Status ApplyAttach(const std::string& v, absl::string_view source, Invocation& inv) {
  if (v.empty()) return absl::InvalidArgumentError(absl::StrCat(source, " must not be empty"));
  struct stat st;
  if (stat(v.c_str(), &st) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, "=", v, ": the daemon's data directory: ", std::strerror(errno)));
  }
  if (!S_ISDIR(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat(
        source, "=", v, ": not a directory (give the daemon's --data-dir, not a file in it)"));
  }
  inv.attach_dir = v;
  inv.attach_source = std::string(source);
  return absl::OkStatus();
}

absl::Status ApplyReadableFile(const std::string& v, absl::string_view source, std::string* out) {
  if (access(v.c_str(), R_OK) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, "=", v, ": cannot read: ", std::strerror(errno)));
  }
  *out = v;
  return absl::OkStatus();
}

absl::Status ApplyTimeout(const std::string& v, absl::string_view source, Invocation& inv) {
  absl::StatusOr<absl::Duration> d = ParseDurationArg(v, source);
  if (!d.ok()) return d.status();
  inv.timeout = *d;
  return absl::OkStatus();
}

absl::Status ApplyTokenFile(const std::string& v, absl::string_view source, Invocation& inv) {
  absl::StatusOr<std::string> token = ReadTokenFile(v, source);
  if (!token.ok()) return token.status();
  inv.token = *std::move(token);
  return absl::OkStatus();
}

absl::Status ApplyExactlyOnce(const std::string& v, absl::string_view, Invocation& inv) {
  inv.exactly_once = v == "on";  // a choice: checked
  return absl::OkStatus();
}

absl::Status ApplyOutput(const std::string& v, absl::string_view, Invocation& inv) {
  inv.output = v == "json" ? OutputFormat::kJson : OutputFormat::kText;  // a choice: checked
  return absl::OkStatus();
}

}  // namespace

const std::vector<GlobalFlag>& GlobalFlags() {
  static const std::string addr_help =
      absl::StrCat("countersd address, HOST:PORT or unix:PATH (default ", kDefaultAddress, ")");
  static const std::vector<GlobalFlag> flags = {
      {{"addr", "ADDR", addr_help}, 0, ApplyAddress},
      {{"attach", "DIR",
        "the counter verbs use the live table of the countersd whose --data-dir is DIR, "
        "with no RPC (see below)"},
       0,
       ApplyAttach},
      // Transport security (TLS, mTLS).
      {{"cacert", "FILE", "TLS: verify the server against these PEM CA certificates"},
       0,
       [](const std::string& v, absl::string_view source, Invocation& inv) {
         return ApplyReadableFile(v, source, &inv.security.ca_file);
       }},
      {{"cert", "FILE", "mTLS: this PEM client certificate (with --key); turns TLS on"},
       0,
       [](const std::string& v, absl::string_view source, Invocation& inv) {
         return ApplyReadableFile(v, source, &inv.security.cert_file);
       }},
      {{"key", "FILE", "mTLS: the private key of --cert"},
       0,
       [](const std::string& v, absl::string_view source, Invocation& inv) {
         return ApplyReadableFile(v, source, &inv.security.key_file);
       }},
      {{"timeout", "DURATION", "deadline of each call, e.g. 500ms, 5s, 1m (default 5s)"},
       0,
       ApplyTimeout},
      {{"exactly-once", "on|off",
        "on (default): a write is retried within --timeout and applied once; off: sent once, "
        "and a lost reply leaves it unknown"},
       0,
       ApplyExactlyOnce},
      {{"token-file", "PATH",
        "file holding the bearer token for a daemon with --auth-file (default: the "
        "token in $COUNTERS_TOKEN)"},
       0,
       ApplyTokenFile},
      {{"output", "text|json", "text (default) or json: one JSON document on stdout"},
       'o',
       ApplyOutput},
      {{"help", "", "show help; `counterctl VERB --help` for a verb"}, 'h', nullptr},
  };
  return flags;
}

const GlobalFlag* FindGlobalFlag(absl::string_view name) {
  for (const GlobalFlag& f : GlobalFlags()) {
    if (f.spec.name == name) return &f;
  }
  return nullptr;
}

const GlobalFlag* FindGlobalShortFlag(char short_name) {
  for (const GlobalFlag& f : GlobalFlags()) {
    if (short_name != 0 && f.short_name == short_name) return &f;
  }
  return nullptr;
}

std::string EnvironmentVariable(const GlobalFlag& flag) {
  if (flag.apply == nullptr) return "";
  std::string name = absl::StrCat("COUNTERS_", flag.spec.name);
  for (char& c : name) c = c == '-' ? '_' : absl::ascii_toupper(static_cast<unsigned char>(c));
  return name;
}

absl::Status ApplyGlobalFlags(const std::map<std::string, std::string, std::less<>>& given,
                              const Environment& env, Invocation& inv) {
  absl::Status first;
  auto keep = [&](absl::Status s) {
    if (first.ok()) first = std::move(s);
  };
  if (const char* token = env(std::string(kTokenEnv)); token != nullptr) {
    inv.token = std::string(absl::StripAsciiWhitespace(token));
  }
  for (const GlobalFlag& f : GlobalFlags()) {
    if (f.apply == nullptr) continue;
    std::string source = absl::StrCat("--", f.spec.name);
    const char* value = nullptr;
    if (auto it = given.find(f.spec.name); it != given.end()) {
      value = it->second.c_str();
    } else if (const std::string var = EnvironmentVariable(f); (value = env(var)) != nullptr) {
      if (*value == '\0') continue;  // empty: unset
      source = absl::StrCat("$", var);
    } else {
      continue;
    }
    absl::Status s = CheckFlagChoice(f.spec, value, source);
    keep(s.ok() ? f.apply(value, source, inv) : s);
  }
  if (first.ok() && inv.security.cert_file.empty() != inv.security.key_file.empty()) {
    first = absl::InvalidArgumentError(
        "--cert and --key go together ($COUNTERS_CERT and $COUNTERS_KEY too)");
  }
  return first;
}

std::string GlobalFlagsHelp() {
  std::vector<std::vector<std::string>> rows;
  for (const GlobalFlag& f : GlobalFlags()) {
    std::string left =
        f.short_name != 0 ? absl::StrCat("  -", std::string(1, f.short_name), ", ") : "      ";
    absl::StrAppend(&left, FlagUsage(f.spec));
    std::string help(f.spec.help);
    if (const std::string var = EnvironmentVariable(f); !var.empty()) {
      absl::StrAppend(&help, " [$", var, "]");
    }
    rows.push_back({left, help});
  }
  return FormatColumns(rows);
}

absl::Status CheckAddress(absl::string_view address) {
  if (absl::StartsWith(address, "unix:")) {
    if (address.size() == 5) return absl::InvalidArgumentError("has no path after unix:");
    return absl::OkStatus();
  }
  const size_t colon = address.rfind(':');
  if (colon == absl::string_view::npos) {
    return absl::InvalidArgumentError(
        "has no port: expected HOST:PORT (such as 127.0.0.1:50051) or unix:PATH");
  }
  const absl::string_view host = address.substr(0, colon);
  const absl::string_view port = address.substr(colon + 1);
  if (host.empty()) return absl::InvalidArgumentError("has no host before the port");
  if (host.find(':') != absl::string_view::npos && !(host.front() == '[' && host.back() == ']')) {
    return absl::InvalidArgumentError(
        "has no port, or an IPv6 host outside brackets: write [::1]:50051");
  }
  int n = 0;
  if (port.empty() || !std::all_of(port.begin(), port.end(), absl::ascii_isdigit) ||
      !absl::SimpleAtoi(port, &n) || n < 1 || n > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("has a bad port \"", port, "\": expected 1 to 65535"));
  }
  return absl::OkStatus();
}

}  // namespace countersd::ctl
