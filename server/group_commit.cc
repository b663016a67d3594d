#include "server/group_commit.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <filesystem>
#include <system_error>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "shared/control.h"
#include "shared/log.h"
#include "shared/status_macros.h"

namespace countersd {
namespace {

// The segments of `handler` already in `wal_dir` (a predecessor's, before
// a respawn): their paths, and the number the next one takes (above all).
std::vector<std::string> ExistingSegments(const std::string& dir, int handler, uint64_t* next) {
  std::vector<std::string> found;
  *next = 1;
  for (const std::string& path : WalSegments(dir)) {
    int h;
    uint64_t n;
    if (ParseWalSegmentName(std::filesystem::path(path).filename().string(), &h, &n) &&
        h == handler) {
      *next = std::max(*next, n + 1);
      found.push_back(path);
    }
  }
  return found;
}

// The last LSN of a segment (0 for none readable).
uint64_t LastLsnOf(const std::string& path, Sys* sys) {
  absl::StatusOr<int> fd = OpenDataFile(sys, path, O_RDONLY, 0);
  if (!fd.ok()) return 0;
  struct stat st;
  std::string bytes;
  if (sys->Fstat(*fd, &st, path).ok()) {
    bytes.resize(static_cast<size_t>(st.st_size));
    if (!bytes.empty() && !sys->Pread(*fd, bytes.data(), bytes.size(), 0, path).ok()) bytes.clear();
  }
  (void)sys->Close(*fd);
  uint64_t last = 0;
  for (const WalRecord& r : ParseWalSegment(bytes)) last = std::max(last, r.lsn);
  return last;
}

}  // namespace

absl::StatusOr<std::unique_ptr<GroupCommit>> GroupCommit::Start(CounterTable* table,
                                                                const std::string& data_dir,
                                                                int handler_index,
                                                                HandlerStatsRow* row, Sys* sys) {
  const std::string& wal_dir = data_dir;
  uint64_t next = 1;
  std::vector<std::string> existing = ExistingSegments(wal_dir, handler_index, &next);
  auto gc = std::unique_ptr<GroupCommit>(new GroupCommit(table, wal_dir, handler_index, next, row, sys));
  // A predecessor's segments are this handler's to remove once covered.
  for (const std::string& path : existing) gc->closed_.push_back({path, LastLsnOf(path, sys)});
  gc->thread_ = std::thread([g = gc.get()] { g->Run(); });
  return gc;
}

GroupCommit::GroupCommit(CounterTable* table, std::string wal_dir, int handler_index,
                         uint64_t next_segment, HandlerStatsRow* row, Sys* sys)
    : table_(table),
      wal_dir_(std::move(wal_dir)),
      handler_index_(handler_index),
      row_(row),
      sys_(sys),
      next_segment_(next_segment),
      seen_generation_(table->snapshot_control().generation.load()) {}

GroupCommit::~GroupCommit() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

void GroupCommit::Append(const WalRecord& record, Done done) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    AppendWalRecord(&pending_, record);
    pending_done_.push_back(std::move(done));
    pending_last_lsn_ = std::max(pending_last_lsn_, record.lsn);
  }
  wake_.notify_one();
}

uint64_t GroupCommit::syncs() const {
  std::lock_guard<std::mutex> lock(mu_);
  return syncs_;
}

uint64_t GroupCommit::records_synced() const {
  std::lock_guard<std::mutex> lock(mu_);
  return records_synced_;
}

void GroupCommit::Run() {
  std::string bytes;
  std::vector<Done> done;
  for (;;) {
    uint64_t last_lsn;
    {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait(lock, [this] { return stopping_ || !pending_.empty(); });
      if (pending_.empty()) return;  // stopping, and everything was answered
      bytes.swap(pending_);
      pending_.clear();
      done.swap(pending_done_);
      last_lsn = pending_last_lsn_;
    }
    const int64_t start = StatsArea::Now();
    const absl::Status st = Commit(bytes, last_lsn);
    if (row_ != nullptr) {
      StatsArea::RecordLogSync(*row_, StatsArea::Now() - start, done.size(), st.ok());
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (st.ok()) {
        ++syncs_;
        records_synced_ += done.size();
      }
    }
    // Covered segments go before the answers, so that a client that saw
    // its reply never sees them.
    RemoveCoveredSegments();
    for (Done& d : done) d(st);
    done.clear();
    bytes.clear();
  }
}

absl::Status GroupCommit::Commit(const std::string& bytes, uint64_t last_lsn) {
  // A newer durable snapshot: start a new segment, so that the old ones
  // can go once a snapshot covers them (step 4).
  const uint64_t generation = table_->snapshot_control().generation.load(std::memory_order_acquire);
  if (generation != seen_generation_ && segment_ != nullptr) {
    closed_.push_back({segment_->path(), segment_last_lsn_});
    segment_.reset();
  }
  seen_generation_ = generation;
  absl::Status st;
  if (segment_ == nullptr) {
    absl::StatusOr<std::unique_ptr<WalSegment>> seg =
        WalSegment::Create(wal_dir_, WalSegmentName(handler_index_, next_segment_++), sys_);
    if (seg.ok()) {
      segment_ = *std::move(seg);
      segment_last_lsn_ = 0;
    } else {
      st = seg.status();
    }
  }
  if (st.ok()) st = segment_->Append(bytes);
  if (st.ok()) st = segment_->Sync();
  if (st.ok()) {
    segment_last_lsn_ = std::max(segment_last_lsn_, last_lsn);
    return st;
  }
  // Step 3: never this segment again. What it held before is still read
  // by a replay (its records are checksummed), so it is kept until a
  // snapshot covers it, as if closed.
  if (segment_ != nullptr) {
    closed_.push_back({segment_->path(), std::max(segment_last_lsn_, last_lsn)});
    segment_.reset();
  }
  SnapshotControl& control = table_->snapshot_control();
  control.request_seq.fetch_add(1);
  FutexWakeAll(&control.request_seq);
  Log(LogLevel::kError,
      "the log of durable writes failed; those writes are applied but not known durable, and a "
      "snapshot is asked for to make them so",
      {{"error", st.ToString()}, {"handler", handler_index_}});
  return absl::InternalError(absl::StrCat(
      "the log of durable writes failed (", st.message(),
      "): the write is applied to the live table but not known to be durable; retry it with the "
      "same session to have it made durable"));
}

void GroupCommit::RemoveCoveredSegments() {
  const uint64_t floor = table_->snapshot_control().wal_floor.load(std::memory_order_acquire);
  bool removed = false;
  for (auto it = closed_.begin(); it != closed_.end();) {
    if (it->last_lsn <= floor) {
      (void)sys_->Unlink(it->path);
      it = closed_.erase(it);
      removed = true;
    } else {
      ++it;
    }
  }
  if (removed) (void)sys_->FsyncDir(wal_dir_);
}

}  // namespace countersd
