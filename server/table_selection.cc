// Table selection at start: which counters does the daemon serve?
// (Not to be confused with CounterTable::RecoverDeadProcess, which repairs
// what one dead process left half-done while the daemon runs.)
//
// How it works, step by step (the supervisor calls this once, holding the
// data directory's flock, before any other process exists):
//
//  0. Fence the processes attached to the map file's previous daemon
//     (CounterTable::FenceAttachers): from here on none of them writes it,
//     and none is inside a critical section, so what follows reads, repairs
//     or sets aside a file nobody changes. Note whether the directory is
//     fresh: it holds no file whose name starts with "counters." (LOCK
//     and attach.sock do not count).
//  1. counters.map exists: CounterTable::OpenReadOnly validates it (magic,
//     layout version, sizes, checksum) without writing to it, so that a file
//     set aside is exactly the file found. If validation fails
//     (FAILED_PRECONDITION), the file is renamed aside to
//     counters.map.corrupt-<UTC time>, never deleted or overwritten; go to 3. Any other error
//     (permissions, I/O) stops the start: renaming would not help.
//  2. It opened. Trust it when the previous owner shut down cleanly (its
//     clean-shutdown flag), or when it was last owned during this boot (same
//     boot id): then every acknowledged change is in it, because the page
//     cache survived whatever killed the daemon. Otherwise the host rebooted
//     since an unclean stop; the kernel may have written its dirty pages
//     back in any order, so the file may be torn. Rename it aside to
//     counters.map.untrusted-<UTC time> and go to 3 -- unless the operator
//     passed --trust-untrusted-map, which accepts it as it is. A trusted
//     file is then opened for writing (CounterTable::Open), which repairs
//     what crashed processes left half-done and re-initialises its locks.
//  3. Restore the newest valid snapshot from counters.snap (SnapshotFile
//     picks the valid half with the highest generation). Build a new table
//     in counters.map.restoring (capacity: the larger of --capacity and the
//     snapshot's), set every counter, msync it, rename it to counters.map
//     and fsync the directory, so a crash during the restore leaves either
//     no counters.map or a complete one. Then reopen it like step 1. Log the
//     generation and the age of the snapshot. If the snapshot file exists
//     but neither half is valid, rename it aside to counters.snap.corrupt-<UTC
//     time>. The snapshot file itself is left as it is: the snapshot writer
//     grows it to the restored table's capacity when it opens it, keeping
//     its newest snapshot (shared/snapshot_file.h).
//     A table opened or restored at another capacity than a --capacity
//     given explicitly keeps its own, with a warning that says so and how
//     to grow it (WarnIfCapacityKept).
//  4. Nothing valid: a fresh directory gets a new empty table (--capacity).
//     A directory that held counter files refuses to start, saying what it
//     found, what it set aside and what the operator can do.
#include "server/table_selection.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <optional>
#include <string_view>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "shared/abseil_string_view.h"
#include "shared/data_dir.h"
#include "shared/log.h"
#include "shared/set_aside.h"
#include "shared/snapshot_file.h"
#include "shared/write_ahead_log.h"
#include "shared/status_macros.h"
#include "shared/sys.h"

namespace countersd {
namespace {

std::string Join(const std::string& dir, std::string_view name) {
  return absl::StrCat(dir, "/", Sv(name));
}

bool Exists(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0;
}

std::vector<std::string> CounterFiles(const std::string& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    std::string name = entry.path().filename().string();
    if (absl::StartsWith(name, "counters.")) names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::string FormatAge(int64_t then_unix_ns) {
  absl::Duration age = absl::Nanoseconds(UnixNanos() - then_unix_ns);
  if (age < absl::ZeroDuration()) return "in the future (clock changed?)";
  return absl::FormatDuration(absl::Trunc(age, absl::Milliseconds(1)));
}

void LogOpenReport(std::string_view how, const TableInfo& info, const OpenReport& report) {
  Log(LogLevel::kInfo, "opened table",
      {{"file", kMapFile},
       {"trusted_because", how},
       {"capacity", info.capacity},
       {"counters", info.live},
       {"batches_rolled_back", report.batches_rolled_back},
       {"inserts_rolled_back", report.inserts_rolled_back},
       {"tombstones_reclaimed", report.tombstones_reclaimed}});
}

// A table keeps its capacity: --capacity is used only when a table is made.
// Say so when the operator asked for another one, and how to grow.
void WarnIfCapacityKept(const TableSelectionOptions& opt, uint64_t capacity) {
  if (!opt.capacity_given || opt.capacity == capacity) return;
  const std::string how =
      opt.capacity > capacity
          ? absl::StrCat("to grow: stop countersd (SIGTERM; its final snapshot holds every "
                         "counter), move ", kMapFile, " out of ", opt.data_dir,
                         ", and start it with --capacity=", opt.capacity,
                         ": it restores the snapshot into a new table of that capacity")
          : std::string("a table never shrinks: a restore takes the larger of --capacity and "
                        "the snapshot's capacity");
  Log(LogLevel::kWarning,
      absl::StrCat("--capacity=", opt.capacity, " ignored: the table keeps its capacity of ",
                   capacity, "; ", how),
      {{"file", kMapFile},
       {"table_capacity", capacity},
       {"requested_capacity", opt.capacity}});
}

// The log of durable writes replayed onto `table` (a restore, or a new
// table), above what `marks` say its snapshot holds (write_ahead_log.h,
// step 4); the table's LSNs then follow the log. Returns the records
// applied or held already, for the log line.
absl::StatusOr<uint64_t> ReplayLog(const TableSelectionOptions& opt, CounterTable* table,
                                   const WalMarks& marks) {
  ASSIGN_OR_RETURN(std::vector<WalRecord> records, ReadWal(opt.data_dir, opt.sys));
  uint64_t last = 0;
  for (const WalRecord& r : records) {
    table->ReplayWalRecord(r, marks);
    last = std::max(last, r.lsn);
  }
  table->FinishReplay(std::max(last, marks.floor));
  return records.size();
}

// Step 3. Returns the restored table, NOT_FOUND if there is no snapshot file,
// FAILED_PRECONDITION if it holds no valid snapshot (after setting it aside).
absl::StatusOr<std::unique_ptr<CounterTable>> RestoreSnapshot(const TableSelectionOptions& opt,
                                                              std::string_view reason,
                                                              std::vector<std::string>* set_aside) {
  const std::string& dir = opt.data_dir;
  const std::string snap_path = Join(dir, kSnapshotFile);
  std::vector<Counter> records;
  std::vector<SessionRecord> sessions;
  absl::StatusOr<SnapshotMetaInfo> meta = SnapshotFile::ReadNewest(
      snap_path,
      [&records](std::string_view key, int64_t value) {
        records.push_back(Counter{std::string(key), value});
      },
      opt.sys, [&sessions](const SessionRecord& session) { sessions.push_back(session); });
  if (absl::IsNotFound(meta.status())) return meta.status();
  if (!meta.ok()) {
    Log(LogLevel::kError, "snapshot file holds no valid snapshot",
        {{"file", kSnapshotFile}, {"error", meta.status().ToString()}});
    if (meta.status().code() == absl::StatusCode::kFailedPrecondition) {
      ASSIGN_OR_RETURN(std::string aside, SetAside(opt.sys, dir, kSnapshotFile, kCorruptKind));
      Log(LogLevel::kError, "kept invalid snapshot file aside",
          {{"file", kSnapshotFile}, {"renamed_to", aside}});
      set_aside->push_back(absl::StrCat(kSnapshotFile, " -> ", aside));
      return absl::FailedPreconditionError(meta.status().message());
    }
    return meta.status();
  }
  // Say so when one half was bad and the other one is used.
  if (absl::StatusOr<std::vector<SnapshotSlotCheck>> checks =
          SnapshotFile::Check(snap_path, opt.sys);
      checks.ok()) {
    for (const SnapshotSlotCheck& c : *checks) {
      // A half never written is no damage; any other invalid one is said,
      // a damaged meta page (whose generation is unknown) included.
      if (!c.status.ok() && !c.never_written) {
        Log(LogLevel::kWarning, "ignoring invalid snapshot half",
            {{"half", c.index},
             {"generation", c.meta.generation != 0 ? absl::StrCat(c.meta.generation)
                                                   : std::string("unknown (meta page damaged)")},
             {"error", c.status.ToString()}});
      }
    }
  }

  const std::string restoring = Join(dir, kRestoringFile);
  if (Exists(restoring)) {
    // Our own unfinished restore from an earlier start; not a validated file.
    Log(LogLevel::kWarning, "removing unfinished restore", {{"file", kRestoringFile}});
    RETURN_IF_ERROR(opt.sys->Unlink(restoring));
  }
  uint64_t capacity = std::max<uint64_t>({opt.capacity, meta->capacity, records.size()});
  uint64_t log_records = 0;
  {
    ASSIGN_OR_RETURN(std::unique_ptr<CounterTable> table,
                     CounterTable::Create(restoring, capacity, opt.sys));
    for (const Counter& c : records) {
      absl::StatusOr<std::optional<int64_t>> set = table->Set(c.key, c.value);
      if (!set.ok()) {
        return absl::DataLossError(absl::StrCat("restoring snapshot generation ", meta->generation,
                                                ": key '", c.key, "': ", set.status().ToString()));
      }
    }
    // The exactly-once sessions, with the counters they wrote: a retry of a
    // write this snapshot holds is not applied again, one it lost is.
    for (const SessionRecord& session : sessions) {
      if (absl::Status st = table->RestoreSession(session); !st.ok()) {
        return absl::DataLossError(absl::StrCat("restoring snapshot generation ", meta->generation,
                                                ": a session: ", st.ToString()));
      }
    }
    // Then the durable writes the snapshot does not hold.
    ASSIGN_OR_RETURN(log_records, ReplayLog(opt, table.get(), meta->wal_marks));
    RETURN_IF_ERROR(table->Sync());
  }
  RETURN_IF_ERROR(opt.sys->Rename(restoring, Join(dir, kMapFile)));
  RETURN_IF_ERROR(opt.sys->FsyncDir(dir));

  OpenReport report;
  ASSIGN_OR_RETURN(std::unique_ptr<CounterTable> table,
                   CounterTable::Open(Join(dir, kMapFile), opt.sys, &report));
  Log(LogLevel::kWarning,
      absl::StrCat("restored snapshot generation ", meta->generation, " taken ",
                   FormatAge(meta->unix_ns), " ago, ", records.size(), " counters, ",
                   sessions.size(), " sessions, then ", log_records,
                   " records of the log of durable writes"),
      {{"reason", reason},
       {"generation", meta->generation},
       {"age", FormatAge(meta->unix_ns)},
       {"snapshot_unix_ns", meta->unix_ns},
       {"snapshot_boot_id", meta->boot_id},
       {"counters", static_cast<uint64_t>(records.size())},
       {"sessions", static_cast<uint64_t>(sessions.size())},
       {"durable_log_records", log_records},
       {"capacity", capacity}});
  WarnIfCapacityKept(opt, capacity);
  return table;
}

}  // namespace

absl::StatusOr<std::unique_ptr<CounterTable>> SelectAndOpenTable(const TableSelectionOptions& opt) {
  const std::string& dir = opt.data_dir;
  const std::string map_path = Join(dir, kMapFile);
  RETURN_IF_ERROR(CounterTable::FenceAttachers(map_path));  // step 0
  const std::vector<std::string> found = CounterFiles(dir);
  std::vector<std::string> set_aside;
  std::string reason;

  if (Exists(map_path)) {  // step 1
    // Decide from a read-only look, so that a file set aside is exactly the
    // file that was found (the writable Open repairs and stamps the header).
    absl::Status invalid;
    std::optional<TableInfo> info;
    {
      absl::StatusOr<std::unique_ptr<CounterTable>> ro =
          CounterTable::OpenReadOnly(map_path, opt.sys);
      if (ro.ok()) {
        info = (*ro)->Info();
      } else if (ro.status().code() == absl::StatusCode::kFailedPrecondition) {
        invalid = ro.status();
      } else {
        return ro.status();
      }
    }
    absl::StatusOr<std::string> boot = opt.sys->BootId();
    if (!boot.ok()) return boot.status();
    std::string trusted_because;
    if (info.has_value()) {  // step 2
      if (info->clean_shutdown) {
        trusted_because = "clean shutdown";
      } else if (info->boot_id == *boot) {
        trusted_because = "unclean stop during this boot; the page cache kept every change";
      } else if (opt.trust_untrusted_map) {
        trusted_because = "--trust-untrusted-map";
        Log(LogLevel::kWarning,
            "trusting a table left by an unclean stop during an earlier boot "
            "(--trust-untrusted-map); it may be torn",
            {{"file", kMapFile}, {"its_boot_id", info->boot_id}, {"this_boot_id", *boot}});
      }
    }
    if (!trusted_because.empty()) {
      OpenReport report;
      absl::StatusOr<std::unique_ptr<CounterTable>> table =
          CounterTable::Open(map_path, opt.sys, &report);
      if (table.ok()) {
        LogOpenReport(trusted_because, (*table)->Info(), report);
        WarnIfCapacityKept(opt, (*table)->capacity());
        return table;
      }
      if (table.status().code() != absl::StatusCode::kFailedPrecondition) return table.status();
      invalid = table.status();
    }
    if (!invalid.ok()) {
      reason = absl::StrCat(kMapFile, " failed validation: ", invalid.message());
      ASSIGN_OR_RETURN(std::string aside, SetAside(opt.sys, dir, kMapFile, kCorruptKind));
      Log(LogLevel::kError, "live table failed validation; kept it aside",
          {{"file", kMapFile}, {"renamed_to", aside}, {"error", invalid.ToString()}});
      set_aside.push_back(
          absl::StrCat(kMapFile, " -> ", aside, " (failed validation: ", invalid.message(), ")"));
    } else {
      // Valid, but nothing vouches that the page cache kept every change.
      const std::string why =
          info->copied ? "a copy of a map that was in use (its recorded device and inode are "
                         "another file's); it may hold torn batches"
                       : absl::StrCat("left by an unclean stop during another boot (",
                                      info->boot_id, "); a host crash may have torn it");
      reason = absl::StrCat(kMapFile, " is ", why);
      ASSIGN_OR_RETURN(std::string aside, SetAside(opt.sys, dir, kMapFile, kUntrustedKind));
      Log(LogLevel::kWarning, "live table not trusted; kept it aside",
          {{"file", kMapFile},
           {"renamed_to", aside},
           {"why", why},
           {"its_boot_id", info->boot_id},
           {"this_boot_id", *boot}});
      set_aside.push_back(absl::StrCat(kMapFile, " -> ", aside, " (valid, but ", why, ")"));
    }
  } else if (!found.empty()) {
    reason = absl::StrCat(kMapFile, " is missing");
  }

  // Step 3 (also when counters.map is missing but a snapshot exists).
  if (!found.empty()) {
    absl::StatusOr<std::unique_ptr<CounterTable>> restored =
        RestoreSnapshot(opt, reason, &set_aside);
    if (restored.ok()) return restored;
    if (!absl::IsNotFound(restored.status()) &&
        restored.status().code() != absl::StatusCode::kFailedPrecondition) {
      return restored.status();
    }
  }

  // Step 4: a new table; and when no snapshot is left but the log of
  // durable writes has records (a host crash before the first snapshot),
  // the new table is the log's: every durable write, nothing else (what
  // was set aside stays there for the operator).
  absl::StatusOr<std::vector<WalRecord>> log = ReadWal(dir, opt.sys);
  const bool log_only = !found.empty() && log.ok() && !log->empty();
  if (log_only) {
    Log(LogLevel::kError,
        "no usable snapshot: starting from the log of durable writes alone; the writes that were "
        "not durable are lost (the files set aside still hold what they held)",
        {{"durable_log_records", static_cast<uint64_t>(log->size())},
         {"kept_aside", set_aside.empty() ? std::string("nothing") : absl::StrJoin(set_aside, "; ")}});
  }
  if (found.empty() || log_only) {
    ASSIGN_OR_RETURN(std::unique_ptr<CounterTable> table,
                     CounterTable::Create(map_path, opt.capacity, opt.sys));
    // Durable writes made before any snapshot (and a map) survived: the
    // log has them all.
    ASSIGN_OR_RETURN(uint64_t log_records, ReplayLog(opt, table.get(), WalMarks{}));
    if (log_records > 0) RETURN_IF_ERROR(table->Sync());
    Log(LogLevel::kInfo, "created new table",
        {{"file", kMapFile},
         {"capacity", opt.capacity},
         {"data_dir", dir},
         {"durable_log_records", log_records}});
    return table;
  }
  std::string untrusted_hint;
  for (const std::string& s : set_aside) {
    if (absl::StrContains(s, absl::StrCat(".", kUntrustedKind, "-"))) {
      untrusted_hint = absl::StrCat(
          " If losing nothing matters more than the risk of a torn file, move the untrusted map "
          "back to ",
          kMapFile, " and start with --trust-untrusted-map.");
    }
  }
  return absl::FailedPreconditionError(
      absl::StrCat("refusing to start: data directory ", dir,
                   " holds counter files but no usable table or "
                   "snapshot. Found: ",
                   absl::StrJoin(found, ", "),
                   ". Kept aside: ", set_aside.empty() ? "nothing" : absl::StrJoin(set_aside, "; "),
                   ". Nothing was deleted. To recover: restore ", kMapFile, " or ", kSnapshotFile,
                   " from a backup into ", dir, ".", untrusted_hint,
                   " To start empty instead, move every counters.* file out of ", dir, "."));
}

}  // namespace countersd
