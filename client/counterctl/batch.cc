// `counterctl batch`: KEY DELTA lines applied as IncrementBatch calls.
//
// How it works:
//  1. Lines come from --file F, else stdin, numbered from 1. Blank lines and
//     lines whose first non-blank character is '#' are skipped. Every other
//     line is KEY DELTA: exactly two blank-separated fields, a valid key (so
//     a key with blanks cannot be given this way) and a signed 64-bit delta.
//  2. Without --pipe, every line is read and checked before anything is
//     sent. A bad line (its number and why), more increments than
//     --max-batch, or no increment at all is an input error: exit 2, nothing
//     applied. Otherwise the increments go as ONE IncrementBatch, which the
//     daemon applies atomically, all or none; its error names the line when
//     the daemon names the increment (OUT_OF_RANGE: "increment N: ...").
//  3. With --pipe (like `redis-cli --pipe`), any number of lines stream
//     through in chunks of --max-batch good lines, each chunk one atomic
//     IncrementBatch. A bad line is recorded as failed and skipped. When
//     the daemon refuses a chunk naming one increment (an overflow), nothing
//     of that chunk was applied: that line fails and the rest of the chunk
//     is sent again. Any other refusal fails the chunk's lines and the run
//     goes on. A transport failure (UNAVAILABLE, DEADLINE_EXCEEDED) or
//     refused credentials (UNAUTHENTICATED) stops the run: the lines of the
//     chunk in flight are "unknown" for a transport failure (the daemon may
//     have applied it: with --exactly-once the client retried it until
//     --timeout ran out, without it not at all) and failed otherwise,
//     and the lines not yet read are not sent. Under --attach the chunks
//     are IncrementBatch calls on the attached table (counter_store.h):
//     the same refusals, and never "unknown" (a refused call changed
//     nothing); UNAVAILABLE there (the daemon restarted) stops the run too.
//  4. --pipe ends with a summary: lines applied, failed and unknown, each
//     failed line's number and why (the first kMaxListedFailures), and why
//     it stopped early. Exit 0 only if every line was applied; 1 if any
//     failed; a stop's own code (1, 4) if it stopped.
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "client/counterctl/counter_store.h"
#include "client/counterctl/output.h"
#include "client/counterctl/verbs.h"
#include "shared/batch_refusal.h"
#include "shared/limits.h"

namespace countersd::ctl {
namespace {

constexpr size_t kMaxListedFailures = 1000;

struct Line {
  int64_t number = 0;
  std::string key;
  int64_t delta = 0;
};

// Reads lines from a file or stdin, one at a time, numbered from 1.
class LineReader {
 public:
  explicit LineReader(std::FILE* f) : f_(f) {}
  ~LineReader() {
    std::free(buf_);
    if (f_ != stdin) std::fclose(f_);
  }
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;

  // The next line without its end of line, or nullopt at the end (or on a
  // read error: error() then says which).
  std::optional<absl::string_view> Next() {
    const ssize_t n = getline(&buf_, &cap_, f_);
    if (n < 0) {
      if (std::ferror(f_)) error_ = std::strerror(errno);
      return std::nullopt;
    }
    ++number_;
    absl::string_view line(buf_, static_cast<size_t>(n));
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
    return line;
  }
  int64_t number() const { return number_; }
  const std::string& error() const { return error_; }

 private:
  std::FILE* f_;
  char* buf_ = nullptr;
  size_t cap_ = 0;
  int64_t number_ = 0;
  std::string error_;
};

// Parses one line into *out. False for a line to skip (blank, comment);
// INVALID_ARGUMENT saying what is wrong with a bad one.
absl::StatusOr<bool> ParseLine(absl::string_view text, int64_t number, Line* out) {
  const absl::string_view stripped = absl::StripAsciiWhitespace(text);
  if (stripped.empty() || stripped.front() == '#') return false;
  std::vector<absl::string_view> fields =
      absl::StrSplit(stripped, absl::ByAnyChar(" \t"), absl::SkipEmpty());
  if (fields.size() != 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("expected KEY DELTA, got ", fields.size(), " fields"));
  }
  if (absl::Status s = CheckKeyArg(fields[0]); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("bad KEY \"", fields[0], "\": ", s.message()));
  }
  absl::StatusOr<int64_t> delta = ParseInt64Arg(fields[1], "DELTA");
  if (!delta.ok()) return delta.status();
  *out = Line{number, std::string(fields[0]), *delta};
  return true;
}

// The increment an OUT_OF_RANGE names (an overflow: the daemon refused the
// whole call for it, shared/batch_refusal.h), if it names one within `size`.
std::optional<BatchRefusal> RefusedIncrement(const absl::Status& s, size_t size) {
  if (s.code() != absl::StatusCode::kOutOfRange) return std::nullopt;
  std::optional<BatchRefusal> r = ParseBatchRefusal(s.message());
  if (!r.has_value() || r->index >= size) return std::nullopt;
  return r;
}

absl::StatusOr<std::vector<int64_t>> Apply(CounterStore& store, const std::vector<Line>& lines) {
  std::vector<IncrementOp> ops;
  ops.reserve(lines.size());
  for (const Line& l : lines) ops.push_back({l.key, l.delta});
  return store.IncrementBatch(ops);
}

// A refusal's message, with line numbers for the daemon's increment index
// and a hint for a --max-batch over the daemon's.
std::string RefusalMessage(const Invocation& inv, const absl::Status& s,
                           const std::vector<Line>& lines) {
  std::string message = DescribeError(inv, s);
  if (std::optional<BatchRefusal> r = RefusedIncrement(s, lines.size())) {
    message = absl::StrCat("line ", lines[r->index].number, ": ", r->why, "; nothing was applied");
  } else if (s.code() == absl::StatusCode::kResourceExhausted &&
             absl::StrContains(s.message(), "max-batch")) {
    absl::StrAppend(&message, " (give a smaller --max-batch)");
  }
  return message;
}

int RunAtomic(const Invocation& inv, LineReader& reader, size_t max_batch) {
  std::vector<Line> lines;
  size_t count = 0;
  while (std::optional<absl::string_view> text = reader.Next()) {
    Line line;
    absl::StatusOr<bool> parsed = ParseLine(*text, reader.number(), &line);
    if (!parsed.ok()) {
      return UsageError(inv, absl::StrCat("line ", reader.number(), ": ", parsed.status().message(),
                                          "; nothing was applied"));
    }
    if (!*parsed) continue;
    if (++count <= max_batch) lines.push_back(std::move(line));
  }
  if (!reader.error().empty()) {
    return UsageError(inv, absl::StrCat("cannot read line ", reader.number() + 1, ": ",
                                        reader.error(), "; nothing was applied"));
  }
  if (count == 0) return UsageError(inv, "no KEY DELTA lines in the input; nothing was applied");
  if (count > max_batch) {
    return UsageError(inv, absl::StrCat(count, " increments do not fit --max-batch=", max_batch,
                                        " (one atomic call); use --pipe to apply them in "
                                        "chunks; nothing was applied"));
  }
  absl::StatusOr<std::vector<int64_t>> values = Apply(*OpenCounterStore(inv), lines);
  if (!values.ok()) {
    return ReportError(
        inv, absl::Status(values.status().code(), RefusalMessage(inv, values.status(), lines)));
  }
  if (inv.json()) {
    JsonWriter j;
    j.BeginObject().Field("applied", static_cast<int64_t>(lines.size()));
    j.Key("counters").BeginArray();
    for (size_t i = 0; i < lines.size(); ++i) {
      j.BeginObject().Field("line", lines[i].number).Field("key", lines[i].key);
      j.Field("value", (*values)[i]).EndObject();
    }
    PrintData(j.EndArray().EndObject().str() + "\n");
  } else {
    std::vector<std::vector<std::string>> rows;
    rows.reserve(lines.size());
    for (size_t i = 0; i < lines.size(); ++i) {
      rows.push_back({lines[i].key, absl::StrCat((*values)[i])});
    }
    PrintData(FormatColumns(rows, {false, true}));
  }
  return kExitOk;
}

// What --pipe did.
struct PipeSummary {
  int64_t applied = 0;
  int64_t failed = 0;
  int64_t unknown = 0;
  std::vector<std::pair<int64_t, std::string>> failures;  // the first kMaxListedFailures
  absl::Status stopped;  // why it stopped early; OK if it read every line

  void Fail(int64_t line, std::string why) {
    ++failed;
    if (failures.size() < kMaxListedFailures) failures.emplace_back(line, std::move(why));
  }
};

bool StopsThePipe(const absl::Status& s) {
  return s.code() == absl::StatusCode::kUnavailable ||
         s.code() == absl::StatusCode::kDeadlineExceeded ||
         s.code() == absl::StatusCode::kUnauthenticated;
}

// Sends `chunk`, dropping the increments the daemon refuses one at a time.
void SendChunk(const Invocation& inv, CounterStore& store, std::vector<Line> chunk,
               PipeSummary& summary) {
  while (!chunk.empty()) {
    absl::StatusOr<std::vector<int64_t>> values = Apply(store, chunk);
    if (values.ok()) {
      summary.applied += static_cast<int64_t>(chunk.size());
      return;
    }
    const absl::Status& s = values.status();
    if (std::optional<BatchRefusal> r = RefusedIncrement(s, chunk.size())) {
      summary.Fail(chunk[r->index].number, std::move(r->why));
      chunk.erase(chunk.begin() + static_cast<ptrdiff_t>(r->index));
      continue;
    }
    const bool unknown = store.MayHaveApplied(s);
    for (const Line& l : chunk) {
      if (unknown) {
        ++summary.unknown;
      } else {
        summary.Fail(l.number, RefusalMessage(inv, s, chunk));
      }
    }
    if (StopsThePipe(s)) summary.stopped = absl::Status(s.code(), DescribeError(inv, s));
    return;
  }
}

int RunPipe(const Invocation& inv, LineReader& reader, size_t max_batch) {
  std::unique_ptr<CounterStore> store = OpenCounterStore(inv);
  PipeSummary summary;
  std::vector<Line> chunk;
  while (true) {
    if (chunk.size() == max_batch) {
      SendChunk(inv, *store, std::move(chunk), summary);
      chunk.clear();
      if (!summary.stopped.ok()) break;
    }
    std::optional<absl::string_view> text = reader.Next();
    if (!text.has_value()) {
      if (!chunk.empty()) SendChunk(inv, *store, std::move(chunk), summary);
      break;
    }
    Line line;
    absl::StatusOr<bool> parsed = ParseLine(*text, reader.number(), &line);
    if (!parsed.ok()) {
      summary.Fail(reader.number(), std::string(parsed.status().message()));
    } else if (*parsed) {
      chunk.push_back(std::move(line));
    }
  }
  if (summary.stopped.ok() && !reader.error().empty()) {
    summary.stopped = absl::DataLossError(
        absl::StrCat("cannot read line ", reader.number() + 1, ": ", reader.error()));
  }
  // Bad lines are failed as they are read, refused ones when their chunk is
  // sent: in line order for the reader.
  std::sort(summary.failures.begin(), summary.failures.end());
  if (inv.json()) {
    JsonWriter j;
    j.BeginObject().Field("applied", summary.applied).Field("failed", summary.failed);
    j.Field("unknown", summary.unknown).Key("failures").BeginArray();
    for (const auto& [line, why] : summary.failures) {
      j.BeginObject().Field("line", line).Field("reason", why).EndObject();
    }
    j.EndArray().Key("stopped");
    if (summary.stopped.ok()) {
      j.Null();
    } else {
      ErrorJson(j, summary.stopped.code(), summary.stopped.message());
    }
    PrintData(j.EndObject().str() + "\n");
  } else {
    std::string out =
        FormatColumns({{"applied", absl::StrCat(WithThousands(summary.applied), " lines")},
                       {"failed", absl::StrCat(WithThousands(summary.failed), " lines")},
                       {"unknown", absl::StrCat(WithThousands(summary.unknown),
                                                " lines (in flight when the connection failed)")}});
    for (const auto& [line, why] : summary.failures) {
      absl::StrAppend(&out, "line ", line, ": ", why, "\n");
    }
    if (summary.failed > static_cast<int64_t>(summary.failures.size())) {
      absl::StrAppend(&out, "... and ", summary.failed - summary.failures.size(),
                      " more failed lines\n");
    }
    PrintData(out);
  }
  if (!summary.stopped.ok()) {
    PrintMessage(
        inv, absl::StrCat("stopped after line ", reader.number(), ": ", summary.stopped.message(),
                          "; the lines after it were not sent"));
    return ExitCodeFor(summary.stopped);
  }
  if (summary.failed > 0 || summary.unknown > 0) {
    PrintMessage(inv,
                 absl::StrCat(summary.failed, " of ",
                              summary.applied + summary.failed + summary.unknown, " lines failed"));
    return kExitError;
  }
  return kExitOk;
}

int RunBatch(const Invocation& inv) {
  size_t max_batch = kMaxBatchOps;
  if (inv.Has("max-batch")) {
    absl::StatusOr<int64_t> m =
        ParsePositiveFlag(inv.Flag("max-batch"), "max-batch", static_cast<int64_t>(kMaxBatchOps));
    if (!m.ok()) return UsageError(inv, m.status().message());
    max_batch = static_cast<size_t>(*m);
  }
  std::FILE* f = stdin;
  if (inv.Has("file")) {
    const std::string path = inv.Flag("file");
    f = std::fopen(path.c_str(), "re");
    if (f == nullptr) {
      return UsageError(inv,
                        absl::StrCat("--file: cannot open ", path, ": ", std::strerror(errno)));
    }
  }
  LineReader reader(f);
  return inv.Has("pipe") ? RunPipe(inv, reader, max_batch) : RunAtomic(inv, reader, max_batch);
}

}  // namespace

VerbSpec BatchVerb() {
  static const std::string description = absl::StrCat(
      "Reads KEY DELTA lines (one increment each; blank lines and lines starting\n"
      "with # are skipped) from --file or stdin and applies them as ONE atomic\n"
      "IncrementBatch: all of them or none. A bad line (a bad key or delta, not\n"
      "exactly two fields), more increments than --max-batch, or an empty input is\n"
      "an input error (exit 2) naming the line, and nothing is applied. An\n"
      "increment the daemon refuses (an overflow) applies nothing either: exit 1,\n"
      "the line named. Prints each key's new value, in input order. A daemon run\n"
      "with a smaller --max-batch refuses a bigger batch: give the same --max-batch.\n"
      "\n"
      "--pipe streams any number of lines in chunks of --max-batch (each chunk\n"
      "atomic), like redis-cli --pipe. Bad lines and refused increments fail on\n"
      "their own, the others are applied; it ends with a summary: lines applied,\n"
      "failed (each with its line number and why, the first ",
      kMaxListedFailures,
      ") and unknown (in\n"
      "flight when the connection failed: each chunk is retried within --timeout and\n"
      "applied once, but one still unanswered then may or may not have been applied).\n"
      "A lost connection or refused credentials stop it. Exits 0 if every line was\n"
      "applied, 1 if any failed, or the stopping failure's code.\n"
      "\n"
      "Examples:\n"
      "  printf 'jobs/done 1\\nquota/alice -5\\n' | counterctl batch\n"
      "  counterctl batch --pipe --file=increments.txt\n"
      "\n"
      "JSON: {\"applied\":2,\"counters\":[{\"line\":1,\"key\":..,\"value\":..},...]}\n"
      "JSON, --pipe: {\"applied\":..,\"failed\":..,\"unknown\":..,\n"
      "       "
      "\"failures\":[{\"line\":3,\"reason\":..}],\"stopped\":null|{\"code\":..,\"message\":..}}\n");
  static const std::string max_batch_help =
      absl::StrCat("increments per IncrementBatch call (default and largest ", kMaxBatchOps,
                   ", the daemon's largest --max-batch)");
  return {"batch",
          "",
          "apply KEY DELTA lines from stdin or a file as one atomic batch",
          description,
          {{"file", "FILE", "read the lines from FILE (default: stdin)"},
           {"max-batch", "N", max_batch_help},
           {"pipe", "", "stream any number of lines in chunks; end with a summary"}},
          0,
          0,
          kCountersGroup,
          RunBatch,
          true};
}

}  // namespace countersd::ctl
