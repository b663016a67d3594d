// COUNTERSD_<FLAG> environment variables (flag_environment.h has how it
// works).
#include "server/flag_environment.h"

#include <algorithm>
#include <cctype>
#include <optional>
#include <utility>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "shared/abseil_string_view.h"

namespace countersd {
namespace {

constexpr std::string_view kPrefix = "COUNTERSD_";

// COUNTERSD_ names that are not flags, used by this project's own files;
// never warned about.
constexpr std::pair<std::string_view, const char*> kOtherToolsVariables[] = {
    {"COUNTERSD_FLAGS", "deploy/countersd.service: extra flags on ExecStart's command line"},
    {"COUNTERSD_PORT", "deploy/compose.yaml: the host port published"},
    {"COUNTERSD_BIN", "the tests: the countersd binary to run"},
};

std::string DashName(std::string_view name) {
  std::string out = absl::StrCat("--", Sv(name));
  std::replace(out.begin(), out.end(), '_', '-');
  return out;
}

size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1] ? 1 : 0)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// The flag variable closest to `name`, if close enough to be a typo of it:
// upper-cased (a case error alone is always caught), the part after the
// prefix at most a quarter of the flag's name away (at least 1 edit).
std::optional<std::string> Closest(std::string_view name,
                                   absl::Span<const char* const> flag_names) {
  const std::string upper = absl::AsciiStrToUpper(Sv(name.substr(kPrefix.size())));
  std::optional<std::string> best;
  size_t best_distance = 0;
  for (const char* flag : flag_names) {
    std::string candidate = FlagVariable(flag);
    const std::string_view suffix = std::string_view(candidate).substr(kPrefix.size());
    const size_t d = EditDistance(upper, suffix);
    if (d <= std::max<size_t>(1, suffix.size() / 4) && (!best || d < best_distance)) {
      best = std::move(candidate);
      best_distance = d;
    }
  }
  return best;
}

}  // namespace

std::string FlagVariable(std::string_view flag_name) {
  std::string out = absl::StrCat(Sv(kPrefix), absl::AsciiStrToUpper(Sv(flag_name)));
  std::replace(out.begin(), out.end(), '-', '_');
  return out;
}

absl::StatusOr<FlagEnvironment> ApplyFlagEnvironment(absl::Span<const char* const> flag_names,
                                                     const std::set<std::string>& given,
                                                     char** envp) {
  FlagEnvironment result;
  for (char** e = envp; e != nullptr && *e != nullptr; ++e) {
    const std::string_view entry = *e;
    const size_t eq = entry.find('=');
    if (eq == std::string_view::npos) continue;
    const std::string_view name = entry.substr(0, eq);
    const std::string_view value = entry.substr(eq + 1);
    if (!absl::StartsWithIgnoreCase(Sv(name), Sv(kPrefix))) continue;
    const char* flag_name = nullptr;
    for (const char* f : flag_names) {
      if (name == FlagVariable(f)) flag_name = f;
    }
    if (flag_name == nullptr) {
      const bool other_tool = std::any_of(std::begin(kOtherToolsVariables),
                                          std::end(kOtherToolsVariables),
                                          [name](const auto& v) { return v.first == name; });
      if (other_tool) continue;
      std::optional<std::string> closest = Closest(name, flag_names);
      result.warnings.push_back(absl::StrCat(
          "ignoring environment variable ", Sv(name), ": no countersd flag is set by it",
          closest ? absl::StrCat(" (did you mean ", *closest, "?)") : std::string()));
      continue;
    }
    if (value.empty() || given.count(flag_name) != 0) continue;  // unset, or the flag wins
    absl::CommandLineFlag* flag = absl::FindCommandLineFlag(flag_name);
    if (flag == nullptr) continue;  // not linked into this binary
    std::string error;
    if (!flag->ParseFrom(Sv(value), &error)) {
      return absl::InvalidArgumentError(absl::StrCat("bad value '", Sv(value),
                                                     "' in environment variable ", Sv(name),
                                                     " (", DashName(flag_name), "): ", error));
    }
    result.applied.push_back(flag_name);
  }
  return result;
}

std::string EnvironmentNote(std::string_view message, const std::vector<std::string>& applied) {
  std::string note;
  for (const std::string& flag : applied) {
    if (absl::StrContains(Sv(message), DashName(flag)) &&
        !absl::StrContains(Sv(message), FlagVariable(flag))) {
      absl::StrAppend(&note, " (", DashName(flag), " is from ", FlagVariable(flag), ")");
    }
  }
  return note;
}

std::string FlagSource(std::string_view flag_name, const std::vector<std::string>& applied) {
  const bool from_environment = std::find(applied.begin(), applied.end(), flag_name) != applied.end();
  return from_environment ? FlagVariable(flag_name) : DashName(flag_name);
}

std::string FlagEnvironmentHelp() {
  std::vector<std::string> others;
  for (const auto& [name, use] : kOtherToolsVariables) {
    others.push_back(absl::StrCat(Sv(name), " (", use, ")"));
  }
  return absl::StrCat(
      "Environment: every flag can also be set as COUNTERSD_<FLAG>, the flag's name in upper "
      "case with '-' as '_' (--max-connections as COUNTERSD_MAX_CONNECTIONS), with the same "
      "value as after '--flag=' (a list flag takes the same comma-separated list). A flag on "
      "the command line wins over its variable; an empty variable counts as unset; a value "
      "that does not parse exits 2 naming the variable. Any other COUNTERSD_ variable is "
      "logged as a warning at start (with the closest flag's variable, if one is near) and "
      "otherwise ignored, except ",
      absl::StrJoin(others, ", "), ".\n");
}

}  // namespace countersd
