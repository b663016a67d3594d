// `counterctl completion bash`: a bash completion script made from the verb
// table (AllVerbs) and the global flag table (GlobalFlags), so it knows
// every verb and flag there is and nothing that is not.
//
// How the script works: it walks the words before the cursor, skipping
// global flags and the values of the global flags that take one, to find
// the verb. Before the verb it offers the verbs (and `help`) and the global
// flags; after it, on a word that starts with '-', the verb's flags and the
// global flags; otherwise the verb's arguments where they are known: files
// for a PATH or FILE, the words of a choice ("new|hash"), the verbs after
// `help`. After a flag whose value is a FILE or PATH it offers files; after
// a DIR (--attach), directories; after one whose value is a choice
// ("--output=text|json"), its words.
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "client/counterctl/global_flags.h"
#include "client/counterctl/verbs.h"

namespace countersd::ctl {
namespace {

bool TakesFile(const FlagSpec& f) { return f.value_name == "FILE" || f.value_name == "PATH"; }
bool TakesDir(const FlagSpec& f) { return f.value_name == "DIR"; }

// "new hash" for a synopsis that is a choice of words ("new|hash", "bash");
// empty otherwise.
std::string Choices(absl::string_view synopsis) {
  if (synopsis.empty()) return "";
  for (char c : synopsis) {
    if (!absl::ascii_islower(static_cast<unsigned char>(c)) && c != '|') return "";
  }
  return absl::StrJoin(absl::StrSplit(synopsis, '|'), " ");
}

std::string GlobalFlagWords() {
  std::vector<std::string> words;
  for (const GlobalFlag& g : GlobalFlags()) {
    words.push_back(absl::StrCat("--", g.spec.name));
    if (g.short_name != 0) words.push_back(absl::StrCat("-", std::string(1, g.short_name)));
  }
  return absl::StrJoin(words, " ");
}

}  // namespace

std::string BashCompletionScript() {
  std::vector<std::string> verbs = {"help"};
  std::set<std::string> file_flags, dir_flags, other_value_flags, global_value_flags;
  // Flags that take one of a few words: case pattern -> the words. (A flag
  // name with different choices in two verbs would take the first's.)
  std::map<std::string, std::string> choice_flags;
  auto value_flag = [&](const FlagSpec& f, const std::string& pattern) {
    if (TakesFile(f)) {
      file_flags.insert(pattern);
    } else if (TakesDir(f)) {
      dir_flags.insert(pattern);
    } else if (const std::vector<std::string> choices = FlagChoices(f); !choices.empty()) {
      choice_flags.emplace(pattern, absl::StrJoin(choices, " "));
    } else {
      other_value_flags.insert(pattern);
    }
  };
  for (const GlobalFlag& g : GlobalFlags()) {
    if (g.spec.value_name.empty()) continue;
    std::string words = absl::StrCat("--", g.spec.name);
    if (g.short_name != 0) absl::StrAppend(&words, "|-", std::string(1, g.short_name));
    global_value_flags.insert(words);
    value_flag(g.spec, words);
  }
  std::string per_verb;
  for (const VerbSpec& v : AllVerbs()) {
    verbs.emplace_back(v.name);
    std::vector<std::string> flags;
    for (const FlagSpec& f : v.flags) {
      flags.push_back(absl::StrCat("--", f.name));
      if (!f.value_name.empty()) value_flag(f, absl::StrCat("--", f.name));
    }
    std::string args;
    if (const std::string choices = Choices(v.synopsis); !choices.empty()) {
      args = absl::StrCat("COMPREPLY=($(compgen -W \"", choices, "\" -- \"$cur\"))");
    } else if (absl::StrContains(v.synopsis, "PATH") || absl::StrContains(v.synopsis, "FILE")) {
      args = "COMPREPLY=($(compgen -f -- \"$cur\"))";
    } else {
      args = "COMPREPLY=()";
    }
    absl::StrAppend(&per_verb, "    ", v.name, ")\n      flags=\"", absl::StrJoin(flags, " "),
                    "\"\n      args='", args, "' ;;\n");
  }
  std::string choice_cases;
  for (const auto& [pattern, words] : choice_flags) {
    absl::StrAppend(&choice_cases, "    ", pattern, ") COMPREPLY=($(compgen -W \"", words,
                    "\" -- \"$cur\")); return ;;\n");
  }
  return absl::StrCat(
      "# bash completion for counterctl, made by `counterctl completion bash` from\n"
      "# its verb and flag tables. Load it with:\n"
      "#   source <(counterctl completion bash)\n"
      "# or save it as /etc/bash_completion.d/counterctl.\n"
      "_counterctl() {\n"
      "  local cur=\"${COMP_WORDS[COMP_CWORD]}\" prev=\"\" verb=\"\" flags=\"\" args=\"\" i w\n"
      "  (( COMP_CWORD > 0 )) && prev=\"${COMP_WORDS[COMP_CWORD-1]}\"\n"
      "  case \"$prev\" in\n"
      "    ",
      absl::StrJoin(file_flags, "|"), ") COMPREPLY=($(compgen -f -- \"$cur\")); return ;;\n",
      dir_flags.empty() ? ""
                        : absl::StrCat("    ", absl::StrJoin(dir_flags, "|"),
                                       ") COMPREPLY=($(compgen -d -- \"$cur\")); return ;;\n"),
      choice_cases, "    ", absl::StrJoin(other_value_flags, "|"),
      ") COMPREPLY=(); return ;;\n"
      "  esac\n"
      "  for (( i = 1; i < COMP_CWORD; i++ )); do\n"
      "    w=\"${COMP_WORDS[i]}\"\n"
      "    case \"$w\" in\n"
      "      ",
      absl::StrJoin(global_value_flags, "|"),
      ") (( i++ )) ;;\n"
      "      -*) ;;\n"
      "      *) verb=\"$w\"; break ;;\n"
      "    esac\n"
      "  done\n"
      "  local globals=\"",
      GlobalFlagWords(),
      "\"\n"
      "  local verbs=\"",
      absl::StrJoin(verbs, " "),
      "\"\n"
      "  if [[ -z \"$verb\" ]]; then\n"
      "    if [[ \"$cur\" == -* ]]; then\n"
      "      COMPREPLY=($(compgen -W \"$globals\" -- \"$cur\"))\n"
      "    else\n"
      "      COMPREPLY=($(compgen -W \"$verbs\" -- \"$cur\"))\n"
      "    fi\n"
      "    return\n"
      "  fi\n"
      "  case \"$verb\" in\n"
      "    help)\n"
      "      flags=\"\"\n"
      "      args='COMPREPLY=($(compgen -W \"$verbs\" -- \"$cur\"))' ;;\n",
      per_verb,
      "    *) return ;;\n"
      "  esac\n"
      "  if [[ \"$cur\" == -* ]]; then\n"
      "    COMPREPLY=($(compgen -W \"$flags $globals\" -- \"$cur\"))\n"
      "  else\n"
      "    eval \"$args\"\n"
      "  fi\n"
      "}\n"
      "complete -F _counterctl counterctl\n");
}

namespace {

int RunCompletion(const Invocation& inv) {
  if (inv.args[0] != "bash") {
    return UsageError(inv, absl::StrCat("no completion for shell \"", inv.args[0],
                                        "\" (expected: completion bash)"));
  }
  PrintData(BashCompletionScript());
  return kExitOk;
}

}  // namespace

VerbSpec CompletionVerb() {
  return {"completion",
          "bash",
          "print a bash completion script",
          "Prints a bash completion script for counterctl's verbs, their flags and\n"
          "the global flags (made from the same tables as this help). Load it in the\n"
          "current shell, or install it for every shell:\n"
          "\n"
          "  source <(counterctl completion bash)\n"
          "  counterctl completion bash > /etc/bash_completion.d/counterctl\n",
          {},
          1,
          1,
          kOfflineGroup,
          RunCompletion};
}

}  // namespace countersd::ctl
