// `counterctl inspect PATH`: offline validation of a map file or a snapshot
// file, without a daemon.
//
// How it works:
//  1. The file is opened O_RDONLY and its first bytes read with pread. The
//     kind is told by magic: "CNTRSDMP" at offset 0 is a map file;
//     "CNTRSNAP" at offset 0 or 4096 (the two meta pages; meta 0 stays zero
//     until the second snapshot) is a snapshot file.
//  2. A map file is opened with CounterTable::OpenReadOnly (PROT_READ, which
//     validates magic, layout version, struct sizes, header checksum and file
//     size), then every live slot is read with ForEach: each key must be a
//     valid key, and the number of live slots must match the header's count.
//  3. A snapshot file is checked with SnapshotFile::Check (both metas and
//     their data checksums) and read with ReadNewest (record framing). A meta
//     page that is all zero is "empty" (never written), not invalid.
//  4. The file is valid when nothing failed: for a snapshot file, at least one
//     half is valid and no half that was ever written is invalid. An invalid
//     half is reported with the generation the daemon would restore instead.
// Nothing here opens the file for writing or maps it writable.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "client/counterctl/cli.h"
#include "client/counterctl/output.h"
#include "client/counterctl/verbs.h"
#include "shared/counter_table.h"
#include "shared/key.h"
#include "shared/layout.h"
#include "shared/snapshot_file.h"
#include "shared/snapshot_format.h"
#include "shared/sys.h"

namespace countersd::ctl {
namespace {

// The magics of the two on-disk formats, from their one home.
constexpr absl::string_view kMapMagic(layout::kMagic, sizeof layout::kMagic);
constexpr absl::string_view kSnapshotMagic(snapshot_format::kMagic, sizeof snapshot_format::kMagic);
constexpr off_t kSnapshotMetaPage = snapshot_format::kMetaPage;

enum class FileKind { kMap, kSnapshot, kUnknown };

// Reads up to `n` bytes at `offset`; fewer at end of file.
absl::StatusOr<std::string> ReadAt(int fd, off_t offset, size_t n, const std::string& path) {
  std::string buf(n, '\0');
  size_t got = 0;
  while (got < n) {
    ssize_t r = pread(fd, buf.data() + got, n - got, offset + static_cast<off_t>(got));
    if (r < 0) {
      if (errno == EINTR) continue;
      return ErrnoToStatus(errno, absl::StrCat("pread(", path, ")"));
    }
    if (r == 0) break;
    got += static_cast<size_t>(r);
  }
  buf.resize(got);
  return buf;
}

struct Probe {
  FileKind kind = FileKind::kUnknown;
  uint64_t size = 0;
  bool meta_empty[2] = {false, false};  // snapshot meta pages that are all zero
};

absl::StatusOr<Probe> ProbeFile(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoToStatus(errno, absl::StrCat("open(", path, ")"));
  Probe probe;
  struct stat st;
  absl::Status status;
  if (fstat(fd, &st) != 0) {
    status = ErrnoToStatus(errno, absl::StrCat("fstat(", path, ")"));
  } else if (!S_ISREG(st.st_mode)) {
    status = absl::FailedPreconditionError(absl::StrCat(path, " is not a regular file"));
  } else {
    probe.size = static_cast<uint64_t>(st.st_size);
    absl::StatusOr<std::string> page0 = ReadAt(fd, 0, kSnapshotMetaPage, path);
    absl::StatusOr<std::string> page1 = ReadAt(fd, kSnapshotMetaPage, kSnapshotMetaPage, path);
    if (!page0.ok()) {
      status = page0.status();
    } else if (!page1.ok()) {
      status = page1.status();
    } else {
      auto all_zero = [](const std::string& p) {
        return p.size() == static_cast<size_t>(kSnapshotMetaPage) &&
               std::all_of(p.begin(), p.end(), [](char c) { return c == 0; });
      };
      if (page0->substr(0, 8) == kMapMagic) {
        probe.kind = FileKind::kMap;
      } else if (page0->substr(0, 8) == kSnapshotMagic || page1->substr(0, 8) == kSnapshotMagic) {
        probe.kind = FileKind::kSnapshot;
      }
      probe.meta_empty[0] = all_zero(*page0);
      probe.meta_empty[1] = all_zero(*page1);
    }
  }
  close(fd);
  if (!status.ok()) return status;
  return probe;
}

std::string FormatUnixNanos(int64_t ns) {
  if (ns <= 0) return "unknown";
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixNanos(ns), absl::UTCTimeZone());
}

std::string BootNote(const std::string& boot_id) {
  absl::StatusOr<std::string> now = CurrentBootId();
  if (boot_id.empty()) return "unknown";
  if (now.ok() && *now == boot_id) return absl::StrCat(boot_id, " (this boot)");
  return absl::StrCat(boot_id, " (another boot)");
}

void AppendDumpText(std::string* out, std::vector<Counter>& counters) {
  std::vector<std::vector<std::string>> rows;
  rows.reserve(counters.size());
  for (const Counter& c : counters) rows.push_back({c.key, absl::StrCat(c.value)});
  absl::StrAppend(out, "\n", FormatColumns(rows, {false, true}));
}

void AppendDumpJson(JsonWriter& j, const std::vector<Counter>& counters) {
  j.Key("counters").BeginArray();
  for (const Counter& c : counters) {
    j.BeginObject().Field("key", c.key).Field("value", c.value).EndObject();
  }
  j.EndArray();
}

// Ends an inspect JSON document (the fields both file kinds end with) and
// prints it. `counters` is null without --dump.
void FinishJson(JsonWriter& j, const std::vector<std::string>& problems,
                const std::vector<Counter>* counters) {
  j.Key("problems").BeginArray();
  for (const std::string& p : problems) j.String(p);
  j.EndArray();
  if (counters) AppendDumpJson(j, *counters);
  j.EndObject();
  PrintData(j.str() + "\n");
}

void SortByKey(std::vector<Counter>& counters) {
  std::sort(counters.begin(), counters.end(),
            [](const Counter& a, const Counter& b) { return a.key < b.key; });
}

// Prints the result of an invalid file and returns the exit code.
int Invalid(const Invocation& inv, const std::string& path, absl::string_view kind,
            absl::string_view why) {
  if (inv.json()) {
    JsonWriter j;
    j.BeginObject().Field("path", path).Field("kind", kind).Field("valid", false);
    j.Field("error", why).EndObject();
    PrintData(j.str() + "\n");
  } else {
    PrintData(FormatColumns(
        {{"path", path}, {"kind", std::string(kind)}, {"status", absl::StrCat("INVALID: ", why)}}));
  }
  PrintMessage(inv, absl::StrCat(path, " is invalid: ", why));
  return kExitError;
}

int InspectMap(const Invocation& inv, const std::string& path, bool dump) {
  absl::StatusOr<std::unique_ptr<CounterTable>> table = CounterTable::OpenReadOnly(path);
  if (!table.ok()) return Invalid(inv, path, "map", table.status().message());
  const TableInfo info = (*table)->Info();

  std::vector<Counter> counters;
  std::vector<std::string> problems;
  uint64_t bad_keys = 0;
  (*table)->ForEach([&](std::string_view key, int64_t value) {
    if (!ValidateKey(key).ok()) {
      if (++bad_keys <= 3) {
        std::string shown;
        AppendJsonString(&shown, std::string(key));
        problems.push_back(absl::StrCat("a live slot holds an invalid key ", shown, ": ",
                                        ValidateKey(key).message()));
      }
    }
    counters.push_back(Counter{std::string(key), value});
  });
  if (bad_keys > 3) problems.push_back(absl::StrCat(bad_keys, " invalid keys in all"));
  if (counters.size() != info.live) {
    problems.push_back(absl::StrCat("the header counts ", info.live, " live counters but ",
                                    counters.size(), " slots are live",
                                    info.clean_shutdown ? "" : " (a daemon may be writing it)"));
  }
  if (counters.size() > info.capacity) {
    problems.push_back(
        absl::StrCat(counters.size(), " live counters exceed the capacity ", info.capacity));
  }
  SortByKey(counters);
  const bool valid = bad_keys == 0 && counters.size() <= info.capacity;
  // A live-count mismatch alone is reported but does not make the file
  // invalid: a running daemon changes counts while we read.

  if (inv.json()) {
    JsonWriter j;
    j.BeginObject().Field("path", path).Field("kind", "map").Field("valid", valid);
    j.Field("layout_version", static_cast<uint64_t>(info.layout_version));
    j.Field("capacity", info.capacity).Field("count", static_cast<uint64_t>(counters.size()));
    j.Field("header_count", info.live);
    j.Field("regions", static_cast<uint64_t>(info.regions));
    j.Field("region_slots", static_cast<uint64_t>(info.region_slots));
    j.Field("file_size", info.file_size).Field("created_unix_ns", info.created_unix_ns);
    j.Field("clean_shutdown", info.clean_shutdown).Field("boot_id", info.boot_id);
    FinishJson(j, problems, dump ? &counters : nullptr);
  } else {
    std::vector<std::vector<std::string>> rows = {
        {"path", path},
        {"kind", absl::StrCat("map file, layout version ", info.layout_version)},
        {"status", valid ? "valid" : "INVALID"},
        {"counters", absl::StrCat(WithThousands(counters.size()), " of ",
                                  WithThousands(info.capacity), " (", WithThousands(info.regions),
                                  " regions x ", WithThousands(info.region_slots), " slots)")},
        {"file size", absl::StrCat(WithThousands(info.file_size), " bytes")},
        {"created", FormatUnixNanos(info.created_unix_ns)},
        {"clean shutdown", info.clean_shutdown ? "yes" : "no (a daemon runs, or it crashed)"},
        {"boot id", BootNote(info.boot_id)},
    };
    for (const std::string& p : problems) rows.push_back({"problem", p});
    std::string out = FormatColumns(rows);
    if (dump) AppendDumpText(&out, counters);
    PrintData(out);
  }
  if (!valid) {
    PrintMessage(inv, absl::StrCat(path, " is invalid: ", problems.front()));
    return kExitError;
  }
  return kExitOk;
}

int InspectSnapshot(const Invocation& inv, const std::string& path, const Probe& probe, bool dump) {
  absl::StatusOr<std::vector<SnapshotSlotCheck>> checks = SnapshotFile::Check(path);
  if (!checks.ok()) return Invalid(inv, path, "snapshot", checks.status().message());

  struct Half {
    int index;
    std::string state;  // "valid", "invalid", "empty"
    std::string reason;
    const SnapshotSlotCheck* check;
  };
  std::vector<Half> halves;
  const SnapshotSlotCheck* newest = nullptr;
  for (const SnapshotSlotCheck& c : *checks) {
    Half h{c.index, "valid", "", &c};
    if (!c.status.ok()) {
      const bool empty = c.index >= 0 && c.index < 2 && probe.meta_empty[c.index];
      h.state = empty ? "empty" : "invalid";
      h.reason = empty ? "never written" : std::string(c.status.message());
    } else if (newest == nullptr || c.meta.generation > newest->meta.generation) {
      newest = &c;
    }
    halves.push_back(std::move(h));
  }

  std::vector<std::string> problems;
  for (const Half& h : halves) {
    if (h.state == "invalid") problems.push_back(absl::StrCat("half ", h.index, ": ", h.reason));
  }
  std::vector<Counter> counters;
  std::optional<SnapshotMetaInfo> restored;
  if (newest == nullptr) {
    problems.push_back("no valid snapshot in the file");
  } else {
    absl::StatusOr<SnapshotMetaInfo> read =
        SnapshotFile::ReadNewest(path, [&](std::string_view key, int64_t value) {
          counters.push_back(Counter{std::string(key), value});
        });
    if (!read.ok()) {
      problems.push_back(std::string(read.status().message()));
    } else {
      restored = *read;
    }
  }
  SortByKey(counters);
  const bool valid = problems.empty();
  std::string restore_note;
  if (!valid && restored.has_value()) {
    restore_note = absl::StrCat("a daemon would restore generation ", restored->generation, " (",
                                restored->counters, " counters)");
  }

  if (inv.json()) {
    JsonWriter j;
    j.BeginObject().Field("path", path).Field("kind", "snapshot").Field("valid", valid);
    j.Field("file_size", probe.size);
    j.Key("newest");
    if (restored.has_value()) {
      j.BeginObject().Field("generation", restored->generation);
      j.Field("count", restored->counters).Field("bytes", restored->bytes);
      j.Field("sessions", restored->sessions);
      j.Field("capacity", restored->capacity).Field("unix_ns", restored->unix_ns);
      j.Field("boot_id", restored->boot_id).EndObject();
    } else {
      j.Null();
    }
    j.Key("halves").BeginArray();
    for (const Half& h : halves) {
      j.BeginObject().Field("index", h.index).Field("state", h.state);
      if (h.state != "empty" && (h.state == "valid" || h.check->meta.generation > 0)) {
        j.Field("generation", h.check->meta.generation).Field("count", h.check->meta.counters);
        j.Field("bytes", h.check->meta.bytes).Field("unix_ns", h.check->meta.unix_ns);
      }
      if (!h.reason.empty()) j.Field("reason", h.reason);
      j.EndObject();
    }
    j.EndArray();
    FinishJson(j, problems, dump ? &counters : nullptr);
  } else {
    std::vector<std::vector<std::string>> rows = {
        {"path", path},
        {"kind", "snapshot file"},
        {"status", valid ? "valid" : "INVALID"},
    };
    if (restored.has_value()) {
      rows.push_back(
          {"newest valid", absl::StrCat("generation ", restored->generation, ", ",
                                        WithThousands(restored->counters), " counters, ",
                                        WithThousands(restored->bytes), " bytes, written ",
                                        FormatUnixNanos(restored->unix_ns))});
      rows.push_back({"boot id", BootNote(restored->boot_id)});
      rows.push_back({"sessions", absl::StrCat(WithThousands(restored->sessions),
                                               " exactly-once sessions (with their windows)")});
    }
    for (const Half& h : halves) {
      std::string text;
      if (h.state == "valid") {
        text = absl::StrCat("valid: generation ", h.check->meta.generation, ", ",
                            WithThousands(h.check->meta.counters), " counters, ",
                            WithThousands(h.check->meta.bytes), " bytes, written ",
                            FormatUnixNanos(h.check->meta.unix_ns));
      } else {
        text = absl::StrCat(h.state == "empty" ? "empty: " : "INVALID: ", h.reason);
      }
      rows.push_back({absl::StrCat("half ", h.index), text});
    }
    if (!restore_note.empty()) rows.push_back({"note", restore_note});
    std::string out = FormatColumns(rows);
    if (dump) AppendDumpText(&out, counters);
    PrintData(out);
  }
  if (!valid) {
    std::string msg = absl::StrCat(path, " is invalid: ", problems.front());
    if (!restore_note.empty()) absl::StrAppend(&msg, "; ", restore_note);
    PrintMessage(inv, msg);
    return kExitError;
  }
  return kExitOk;
}

int RunInspect(const Invocation& inv) {
  const std::string& path = inv.args[0];
  const bool dump = inv.Has("dump");
  absl::StatusOr<Probe> probe = ProbeFile(path);
  if (!probe.ok()) {
    PrintMessage(inv, probe.status().message());
    return probe.status().code() == absl::StatusCode::kNotFound ? kExitNotFound : kExitError;
  }
  switch (probe->kind) {
    case FileKind::kMap:
      return InspectMap(inv, path, dump);
    case FileKind::kSnapshot:
      return InspectSnapshot(inv, path, *probe, dump);
    case FileKind::kUnknown:
      break;
  }
  return Invalid(inv, path, "unknown",
                 probe->size < 8 ? absl::StrCat("the file is ", probe->size,
                                                " bytes, too short to be a countersd file")
                                 : "not a countersd map or snapshot file (unknown magic)");
}

}  // namespace

VerbSpec InspectVerb() {
  return {"inspect",
          "PATH",
          "validate a map or snapshot file offline (never writes it)",
          "Reads a countersd map file or snapshot file without a daemon and without\n"
          "writing to it. Tells the kind by its magic, validates the header (magic,\n"
          "layout version, sizes, checksum) and, for a snapshot file, both meta pages\n"
          "and their data checksums. Prints the counts and generation(s); --dump also\n"
          "prints every counter, sorted by key.\n"
          "\n"
          "Exits 0 if the file is valid, 1 if it is not (saying why on stderr; for a\n"
          "snapshot file with one bad half it also says which generation a daemon would\n"
          "restore), 3 if it does not exist. Safe to run on the files of a live daemon;\n"
          "the values are then read while they change.\n"
          "\n"
          "Examples:\n"
          "  counterctl inspect /var/lib/countersd/counters.map --dump\n"
          "  counterctl inspect /var/lib/countersd/counters.snap\n"
          "\n"
          "JSON: {\"path\":..,\"kind\":\"map\"|\"snapshot\",\"valid\":true,...,\"problems\":[..],\n"
          "       \"counters\":[{\"key\":..,\"value\":..}] (with --dump)}\n",
          {{"dump", "", "print every counter, sorted by key"}},
          1,
          1,
          kOfflineGroup,
          RunInspect};
}

}  // namespace countersd::ctl
