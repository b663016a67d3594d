// ToolFlags: the one command-line parser of the test tools (the programs in
// tests/bench/ and tests/e2e/load_client.cc). Header-only, standard library
// only, so that every tool can use it whatever it links.
//
//   std::string addr;
//   int64_t batch = 1000;
//   countersd::testing::ToolFlags flags("fill_counters", "Loads N counters into a countersd.");
//   flags.Required("addr", &addr, "HOST:PORT", "the daemon");
//   flags.Add("batch", &batch, "N", "keys per IncrementBatch call");
//   flags.Parse(argc, argv);
//   if (batch < 1) flags.Fail("--batch must be >= 1");
//
// Contract:
//  - Every argument is --name=value, for a flag added before Parse; the
//    value must be of the flag's type (a whole decimal number within the
//    type's range for an integer, a decimal number for a double, anything
//    for a string). A flag given twice keeps its last value.
//  - --help (or -h) prints the tool's description and every flag with its
//    default to stdout and exits 0.
//  - Anything else (an unknown flag, no "=", a bad value, a missing
//    Required flag) prints "TOOL: what is wrong" and the flags to stderr and
//    exits 2; so does Fail, for the checks a tool makes after Parse. A
//    Required flag given an empty value counts as missing.
//  - PassThrough(prefix) leaves arguments whose name starts with the prefix
//    to a library that parses them itself (Google Benchmark's --benchmark_*).
// Not thread-safe; meant for main() only.
#ifndef COUNTERSD_TESTS_TOOL_FLAGS_H_
#define COUNTERSD_TESTS_TOOL_FLAGS_H_

#include <algorithm>
#include <charconv>
#include <concepts>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

namespace countersd::testing {

class ToolFlags {
 public:
  // `tool` names the program in messages; `description` heads --help.
  ToolFlags(std::string tool, std::string description)
      : tool_(std::move(tool)), description_(std::move(description)) {}

  // A flag --name=METAVAR that sets *out; its current value is the default.
  template <typename T>
  void Add(std::string name, T* out, std::string metavar, std::string help) {
    AddFlag(std::move(name), out, std::move(metavar), std::move(help), /*required=*/false);
  }
  // A flag that must be given.
  template <typename T>
  void Required(std::string name, T* out, std::string metavar, std::string help) {
    AddFlag(std::move(name), out, std::move(metavar), std::move(help), /*required=*/true);
  }
  // Arguments --PREFIX... are not ours: Parse leaves them; `help` says whose.
  void PassThrough(std::string prefix, std::string help) {
    pass_through_.push_back({std::move(prefix), std::move(help)});
  }

  // Parses argv[1..argc-1] as the contract at the top of this file says.
  void Parse(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
      const std::string_view arg = argv[i];
      if (arg == "--help" || arg == "-h") {
        std::fputs(HelpText().c_str(), stdout);
        std::exit(0);
      }
      if (arg.substr(0, 2) != "--") Fail("unexpected argument '" + std::string(arg) + "'");
      const size_t eq = arg.find('=');
      const std::string name(arg.substr(2, eq == std::string_view::npos ? arg.npos : eq - 2));
      if (IsPassedThrough(name)) continue;
      Flag* flag = Find(name);
      if (flag == nullptr) Fail("unknown flag --" + name);
      if (eq == std::string_view::npos)
        Fail("--" + name + " needs a value: --" + name + "=" + flag->metavar);
      const std::string value(arg.substr(eq + 1));
      if (!flag->set(value)) {
        Fail("--" + name + " needs " + flag->kind + ", got '" + value + "'");
      }
      flag->given = !value.empty();  // an empty value does not give a Required flag
    }
    for (const Flag& f : flags_) {
      if (f.required && !f.given) Fail("--" + f.name + " is required");
    }
  }

  // Reports a bad command line: "TOOL: message" and the flags on stderr,
  // then exit status 2.
  [[noreturn]] void Fail(const std::string& message) const {
    std::fprintf(stderr, "%s: %s\n%s", tool_.c_str(), message.c_str(), HelpText().c_str());
    std::exit(2);
  }

 private:
  struct Flag {
    std::string name, metavar, help, kind, default_text;
    bool required = false;
    bool given = false;
    std::function<bool(const std::string&)> set;
  };
  struct Prefix {
    std::string prefix, help;
  };

  template <typename T>
  void AddFlag(std::string name, T* out, std::string metavar, std::string help, bool required) {
    Flag f{std::move(name), std::move(metavar), std::move(help), "", "", required, false, nullptr};
    if constexpr (std::same_as<T, std::string>) {
      f.kind = "a string";
      f.default_text = *out;
      f.set = [out](const std::string& v) {
        *out = v;
        return true;
      };
    } else if constexpr (std::integral<T> && !std::same_as<T, bool>) {
      f.kind = std::is_signed_v<T> ? "an integer" : "a non-negative integer";
      f.default_text = std::to_string(*out);
      f.set = [out](const std::string& v) { return ParseNumber(v, out); };
    } else {
      static_assert(std::same_as<T, double>, "ToolFlags: a string, an integer or a double");
      f.kind = "a number";
      char text[32];
      std::snprintf(text, sizeof text, "%g", *out);
      f.default_text = text;
      f.set = [out](const std::string& v) { return ParseNumber(v, out); };
    }
    flags_.push_back(std::move(f));
  }

  template <typename T>
  static bool ParseNumber(const std::string& v, T* out) {
    T parsed{};
    const char* end = v.data() + v.size();
    const std::from_chars_result r = std::from_chars(v.data(), end, parsed);
    if (v.empty() || r.ec != std::errc() || r.ptr != end) return false;
    *out = parsed;
    return true;
  }

  Flag* Find(const std::string& name) {
    for (Flag& f : flags_) {
      if (f.name == name) return &f;
    }
    return nullptr;
  }

  bool IsPassedThrough(const std::string& name) const {
    for (const Prefix& p : pass_through_) {
      if (name.compare(0, p.prefix.size(), p.prefix) == 0) return true;
    }
    return false;
  }

  std::string HelpText() const {
    std::string out = "Usage: " + tool_ + " [--flag=value ...]\n" + description_ + "\n\nFlags:\n";
    for (const Flag& f : flags_) {
      std::string left = "  --" + f.name + "=" + f.metavar;
      left.resize(std::max<size_t>(left.size() + 2, 28), ' ');
      out += left + f.help;
      if (f.required) {
        out += " (required)";
      } else if (!f.default_text.empty()) {
        out += " (default " + f.default_text + ")";
      }
      out += "\n";
    }
    for (const Prefix& p : pass_through_) {
      std::string left = "  --" + p.prefix + "*";
      left.resize(std::max<size_t>(left.size() + 2, 28), ' ');
      out += left + p.help + "\n";
    }
    out += "  --help                    this text\n";
    return out;
  }

  const std::string tool_;
  const std::string description_;
  std::vector<Flag> flags_;
  std::vector<Prefix> pass_through_;
};

}  // namespace countersd::testing

#endif  // COUNTERSD_TESTS_TOOL_FLAGS_H_
