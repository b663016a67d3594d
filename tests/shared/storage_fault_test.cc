// Storage faults on the map and snapshot files (issue 10, faults 2, 3, 7):
// every block is allocated before it is promised, the snapshot file follows
// the table's capacity, an unusable snapshot file is set aside, and each
// failed system call (FaultInjectingSys, or a real full tmpfs) gives a clear
// error, loses nothing acknowledged and leaves the previous snapshot valid,
// which each test asserts by reading the file back.
#include <errno.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "shared/abseil_string_view.h"
#include "shared/data_dir.h"
#include "shared/snapshot_file.h"
#include "shared/snapshot_format.h"
#include "tests/shared/fault_injecting_sys.h"
#include "tests/shared/full_disk.h"
#include "tests/shared/table_fixture.h"

namespace countersd {
namespace {

using Records = std::map<std::string, int64_t>;
using StorageFault = TempDirTest;

std::string Encode(const Records& r) {
  std::string out;
  for (auto& [k, v] : r) AppendSnapshotRecord(&out, k, v);
  return out;
}

// The newest valid snapshot in the file: its generation and records.
absl::StatusOr<std::pair<uint64_t, Records>> ReadBack(const std::string& path) {
  Records r;
  auto meta =
      SnapshotFile::ReadNewest(path, [&](std::string_view k, int64_t v) { r[std::string(k)] = v; });
  if (!meta.ok()) return meta.status();
  return std::make_pair(meta->generation, r);
}

// Bytes of the file that have disk blocks (st_blocks is in 512-byte units).
uint64_t AllocatedBytes(const std::string& path) {
  struct stat st;
  EXPECT_EQ(stat(path.c_str(), &st), 0) << path;
  return uint64_t(st.st_blocks) * 512;
}
uint64_t FileSize(const std::string& path) { return std::filesystem::file_size(path); }

std::vector<std::string> EntriesWithPrefix(const std::string& dir, const std::string& prefix) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    std::string name = e.path().filename().string();
    if (absl::StartsWith(name, prefix)) out.push_back(name);
  }
  return out;
}

std::string ReadAll(const std::string& path) {
  std::string out(FileSize(path), '\0');
  int fd = open(path.c_str(), O_RDONLY);
  EXPECT_GE(fd, 0);
  EXPECT_EQ(pread(fd, out.data(), out.size(), 0), static_cast<ssize_t>(out.size()));
  close(fd);
  return out;
}

// Records for `n` counters with the longest keys: a snapshot of a full
// table of capacity n.
Records FullTable(uint64_t n) {
  Records r;
  for (uint64_t i = 0; i < n; ++i) {
    std::string key = absl::StrCat(i, "/");
    key.resize(kMaxKeyBytes, 'k');
    r[key] = static_cast<int64_t>(i);
  }
  return r;
}

// ---- Allocation (fault 3): no page of either file is a hole. ----

TEST_F(StorageFault, CreatedMapHasEveryBlockAllocated) {
  auto t = MustCreate(50000);
  ASSERT_NE(t, nullptr);
  EXPECT_GE(AllocatedBytes(Path("t.map")), FileSize(Path("t.map")));
}

TEST_F(StorageFault, OpeningASparseMapAllocatesItsHoles) {
  { ASSERT_NE(MustCreate(50000), nullptr); }
  // What an older version left: the same file with its blocks punched out.
  int fd = open(Path("t.map").c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 4096 * 16,
                      FileSize(Path("t.map")) - 4096 * 16),
            0);
  close(fd);
  ASSERT_LT(AllocatedBytes(Path("t.map")), FileSize(Path("t.map")));
  auto t = CounterTable::Open(Path("t.map"));
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_GE(AllocatedBytes(Path("t.map")), FileSize(Path("t.map")));
}

TEST_F(StorageFault, SnapshotFileHasEveryBlockAllocated) {
  auto f = SnapshotFile::OpenForWrite(Path(kSnapshotFile), 20000);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_GE(AllocatedBytes(Path(kSnapshotFile)), FileSize(Path(kSnapshotFile)));
}

// ---- The snapshot file follows the capacity (fault 2). ----

TEST_F(StorageFault, SnapshotFileGrowsWithTheCapacityKeepingItsNewestSnapshot) {
  const std::string path = Path(kSnapshotFile);
  {
    auto f = SnapshotFile::OpenForWrite(path, 10);
    ASSERT_TRUE(f.ok()) << f.status();
    ASSERT_TRUE((*f)->Write(Encode({{"a", 1}}), 1, 10).ok());
    ASSERT_TRUE((*f)->Write(Encode({{"a", 2}, {"b", 3}}), 2, 10).ok());
  }
  const uint64_t small = FileSize(path);
  // A restore (or a larger --capacity) now needs room for 1000 counters.
  auto f = SnapshotFile::OpenForWrite(path, 1000);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_GT(FileSize(path), small);
  EXPECT_EQ((*f)->generation(), 2u);
  auto kept = ReadBack(path);
  ASSERT_TRUE(kept.ok()) << kept.status();
  EXPECT_EQ(kept->first, 2u);
  EXPECT_EQ(kept->second, (Records{{"a", 2}, {"b", 3}}));
  // A snapshot of a full table of the new capacity fits.
  const Records full = FullTable(1000);
  auto m = (*f)->Write(Encode(full), full.size(), 1000);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->generation, 3u);
  auto back = ReadBack(path);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->second, full);
  EXPECT_TRUE(EntriesWithPrefix(dir_, "counters.snap.").empty());
}

TEST_F(StorageFault, InvalidSnapshotFileIsSetAsideAndAFreshOneMade) {
  const std::string path = Path(kSnapshotFile);
  {
    auto f = SnapshotFile::OpenForWrite(path, 100);
    ASSERT_TRUE((*f)->Write(Encode({{"x", 1}}), 1, 100).ok());
    ASSERT_TRUE((*f)->Write(Encode({{"x", 2}}), 1, 100).ok());
  }
  Poke(path, 10, "XX", 2);                                // meta 0
  Poke(path, snapshot_format::kMetaPage + 10, "XX", 2);  // meta 1
  const std::string bad = ReadAll(path);
  auto f = SnapshotFile::OpenForWrite(path, 100);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ((*f)->generation(), 0u);
  auto aside = EntriesWithPrefix(dir_, absl::StrCat(kSnapshotFile, ".", kCorruptKind, "-"));
  ASSERT_EQ(aside.size(), 1u);
  EXPECT_TRUE(ReadAll(Path(aside[0])) == bad) << "the set-aside file is not the file found";
  ASSERT_TRUE((*f)->Write(Encode({{"y", 5}}), 1, 100).ok());
  auto back = ReadBack(path);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->second, (Records{{"y", 5}}));
}

// ---- Each failing call (fault injection). ----

// A snapshot file holding generation 2 = {"k": 2}, for the failure tests.
void WriteTwoGenerations(const std::string& path, uint64_t capacity) {
  auto f = SnapshotFile::OpenForWrite(path, capacity);
  ASSERT_TRUE(f.ok()) << f.status();
  ASSERT_TRUE((*f)->Write(Encode({{"k", 1}}), 1, capacity).ok());
  ASSERT_TRUE((*f)->Write(Encode({{"k", 2}}), 1, capacity).ok());
}

void ExpectGenerationTwoIntact(const std::string& path) {
  auto back = ReadBack(path);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->first, 2u);
  EXPECT_EQ(back->second, (Records{{"k", 2}}));
}

struct CreateFault {
  SysCall call;
  std::string match;
  int err;
};

class MapCreateFault : public TempDirTest, public ::testing::WithParamInterface<CreateFault> {};

TEST_P(MapCreateFault, FailsWithAClearErrorAndLeavesNoHalfMadeFile) {
  FaultInjectingSys sys;
  sys.FailNth(GetParam().call, 1, GetParam().err, GetParam().match);
  auto t = CounterTable::Create(Path("t.map"), 1000, &sys);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(sys.injected(), 1);
  EXPECT_TRUE(absl::StrContains(t.status().message(), Sv(SysCallName(GetParam().call))))
      << t.status();
  EXPECT_FALSE(std::filesystem::exists(Path("t.map")));
}

INSTANTIATE_TEST_SUITE_P(
    EachCall, MapCreateFault,
    ::testing::Values(CreateFault{SysCall::kFtruncate, "t.map", ENOSPC},
                      CreateFault{SysCall::kFallocate, "t.map", ENOSPC},
                      CreateFault{SysCall::kPwrite, "t.map", EIO},
                      CreateFault{SysCall::kFsync, "t.map", EIO},
                      CreateFault{SysCall::kFsyncDir, "", EIO},
                      CreateFault{SysCall::kMmap, "t.map", ENOMEM}),
    [](const auto& info) { return std::string(SysCallName(info.param.call)); });

TEST_F(StorageFault, MapCreateDirectoryFsyncIsMade) {
  FaultInjectingSys sys;
  auto t = CounterTable::Create(Path("t.map"), 1000, &sys);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(sys.calls(SysCall::kFsyncDir, dir_), 1);
}

TEST_F(StorageFault, SnapshotFileCreateFsyncsTheDirectory) {
  FaultInjectingSys sys;
  auto f = SnapshotFile::OpenForWrite(Path(kSnapshotFile), 100, &sys);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_GE(sys.calls(SysCall::kFsyncDir, dir_), 1);
}

class SnapshotResizeFault : public TempDirTest,
                            public ::testing::WithParamInterface<CreateFault> {};

// A restore at a larger capacity makes a new, larger file; whatever call
// fails on the way, the old file stays, with its newest snapshot.
TEST_P(SnapshotResizeFault, FailsWithAClearErrorAndKeepsTheOldFile) {
  const std::string path = Path(kSnapshotFile);
  WriteTwoGenerations(path, 10);
  if (HasFatalFailure()) return;
  FaultInjectingSys sys;
  sys.FailNth(GetParam().call, 1, GetParam().err, GetParam().match);
  auto f = SnapshotFile::OpenForWrite(path, 5000, &sys);
  EXPECT_FALSE(f.ok());
  EXPECT_EQ(sys.injected(), 1);
  EXPECT_TRUE(absl::StrContains(f.status().message(), Sv(SysCallName(GetParam().call))))
      << f.status();
  ExpectGenerationTwoIntact(path);
  // A later attempt, with room again, succeeds.
  auto again = SnapshotFile::OpenForWrite(path, 5000);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ((*again)->generation(), 2u);
  ExpectGenerationTwoIntact(path);
}

INSTANTIATE_TEST_SUITE_P(
    EachCall, SnapshotResizeFault,
    ::testing::Values(CreateFault{SysCall::kOpen, ".new", EROFS},
                      CreateFault{SysCall::kFtruncate, ".new", ENOSPC},
                      CreateFault{SysCall::kFallocate, ".new", ENOSPC},
                      CreateFault{SysCall::kMsync, "snapshot data", EIO},
                      CreateFault{SysCall::kMsync, "snapshot meta", EIO},
                      CreateFault{SysCall::kFsync, ".new", EIO},
                      CreateFault{SysCall::kRename, ".new", EIO}),
    [](const auto& info) {
      std::string name(SysCallName(info.param.call));
      if (info.param.match == "snapshot data") name += "_data";
      if (info.param.match == "snapshot meta") name += "_meta";
      return name;
    });

TEST_F(StorageFault, SnapshotResizeDirectoryFsyncFailureIsReported) {
  const std::string path = Path(kSnapshotFile);
  WriteTwoGenerations(path, 10);
  if (HasFatalFailure()) return;
  FaultInjectingSys sys;
  sys.FailNth(SysCall::kFsyncDir, 1, EIO);
  auto f = SnapshotFile::OpenForWrite(path, 5000, &sys);
  // The rename happened: the new file holds generation 2, but the rename may
  // not be durable, so the writer is not handed out.
  EXPECT_FALSE(f.ok());
  EXPECT_TRUE(absl::StrContains(f.status().message(), "fsync")) << f.status();
  ExpectGenerationTwoIntact(path);
}

TEST_F(StorageFault, SettingAnInvalidSnapshotFileAsideFailsCleanly) {
  const std::string path = Path(kSnapshotFile);
  WriteTwoGenerations(path, 100);
  if (HasFatalFailure()) return;
  Poke(path, 10, "XX", 2);
  Poke(path, snapshot_format::kMetaPage + 10, "XX", 2);
  const std::string bad = ReadAll(path);
  FaultInjectingSys sys;
  sys.FailNth(SysCall::kRename, 1, EROFS, kSnapshotFile);
  auto f = SnapshotFile::OpenForWrite(path, 100, &sys);
  EXPECT_FALSE(f.ok());
  EXPECT_TRUE(absl::StrContains(f.status().message(), "rename")) << f.status();
  EXPECT_TRUE(ReadAll(path) == bad) << "the invalid file was changed";
}

struct WriteFault {
  std::string name;
  SysCall call;
  std::string match;
  int err;
};

class SnapshotWriteFault : public TempDirTest, public ::testing::WithParamInterface<WriteFault> {};

TEST_P(SnapshotWriteFault, FailsThatSnapshotOnlyAndKeepsThePreviousOne) {
  const std::string path = Path(kSnapshotFile);
  FaultInjectingSys sys;
  auto f = SnapshotFile::OpenForWrite(path, 100, &sys);
  ASSERT_TRUE(f.ok()) << f.status();
  ASSERT_TRUE((*f)->Write(Encode({{"k", 1}}), 1, 100).ok());
  ASSERT_TRUE((*f)->Write(Encode({{"k", 2}}), 1, 100).ok());
  sys.FailNth(GetParam().call, 1, GetParam().err, GetParam().match);
  auto failed = (*f)->Write(Encode({{"k", 3}}), 1, 100);
  ASSERT_FALSE(failed.ok());
  EXPECT_TRUE(absl::StrContains(failed.status().message(), GetParam().match)) << failed.status();
  EXPECT_EQ((*f)->generation(), 2u);
  if (GetParam().match == "snapshot data") {
    ExpectGenerationTwoIntact(path);  // its meta was never written
  } else {
    // The meta page of generation 3 may or may not have reached the disk;
    // either way generation 2's half and meta are untouched and valid.
    auto checks = SnapshotFile::Check(path);
    ASSERT_TRUE(checks.ok()) << checks.status();
    EXPECT_TRUE((*checks)[0].status.ok()) << (*checks)[0].status;
    EXPECT_EQ((*checks)[0].meta.generation, 2u);
  }
  auto next = (*f)->Write(Encode({{"k", 4}}), 1, 100);
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(next->generation, 3u);
}

INSTANTIATE_TEST_SUITE_P(
    EachCall, SnapshotWriteFault,
    ::testing::Values(WriteFault{"DataMsyncEio", SysCall::kMsync, "snapshot data", EIO},
                      WriteFault{"DataMsyncEnospc", SysCall::kMsync, "snapshot data", ENOSPC},
                      WriteFault{"MetaMsyncEio", SysCall::kMsync, "snapshot meta", EIO},
                      WriteFault{"MetaMsyncErofs", SysCall::kMsync, "snapshot meta", EROFS}),
    [](const auto& info) { return info.param.name; });

// ---- A real full disk: a small tmpfs (root only; skipped otherwise). ----

TEST_F(FullDisk, MapTooBigForTheDiskFailsAtCreateNeverSigbusLater) {
  const int status = InChild([this] {
    auto t = CounterTable::Create(Path(kMapFile), 100000);  // ~24 MB on a 1 MB disk
    if (t.ok()) {
      for (int i = 0; i < 100000; ++i) (void)(*t)->Increment(absl::StrCat("key/", i), 1);
      return 2;  // it promised storage it did not have
    }
    return t.status().code() == absl::StatusCode::kResourceExhausted &&
                   !std::filesystem::exists(Path(kMapFile))
               ? 0
               : 3;
  });
  ASSERT_TRUE(WIFEXITED(status)) << "killed by signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 0) << "2: Create succeeded on a full disk; 3: wrong error";
}

TEST_F(FullDisk, SnapshotFileTooBigForTheDiskFailsAtOpenNeverSigbusInWrite) {
  const int status = InChild([this] {
    auto f = SnapshotFile::OpenForWrite(Path(kSnapshotFile), 20000);  // ~6.8 MB
    if (f.ok()) {
      const Records full = FullTable(20000);
      (void)(*f)->Write(Encode(full), full.size(), 20000);
      return 2;
    }
    return f.status().code() == absl::StatusCode::kResourceExhausted ? 0 : 3;
  });
  ASSERT_TRUE(WIFEXITED(status)) << "killed by signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 0) << "2: OpenForWrite succeeded on a full disk; 3: wrong error";
}

}  // namespace
}  // namespace countersd
