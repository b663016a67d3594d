// A restore after a host crash (server/table_selection.cc step 3) into a
// table of a larger capacity, with each of its system calls failing in
// turn (the fault-injecting Sys): the start fails with an error naming the
// call, the snapshot file is untouched, nothing half-made is served, and
// the next start, with the disk healthy again, restores every counter.
#include <errno.h>

#include <filesystem>
#include <map>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "server/snapshot_writer.h"
#include "server/table_selection.h"
#include "shared/abseil_string_view.h"
#include "shared/data_dir.h"
#include "shared/snapshot_file.h"
#include "tests/shared/fault_injecting_sys.h"
#include "tests/shared/table_fixture.h"

namespace countersd {
namespace {

// This boot, as seen after a reboot: another boot id, so the map left by
// the "crashed" daemon is not trusted.
class RebootedSys : public FaultInjectingSys {
 public:
  absl::StatusOr<std::string> BootId() override {
    return std::string("00000000-0000-4000-8000-000000000000");
  }
};

struct Fault {
  std::string name;
  SysCall call;
  std::string match;
  int err;
};

class RestoreFault : public TempDirTest, public ::testing::WithParamInterface<Fault> {
 protected:
  // A daemon's life before the crash: 80 counters, a durable snapshot of
  // them, then more changes that no snapshot holds, and no clean shutdown.
  void SetUp() override {
    TempDirTest::SetUp();
    auto t = CounterTable::Create(Path(kMapFile), 100);
    ASSERT_TRUE(t.ok()) << t.status();
    for (int i = 0; i < 80; ++i) {
      const std::string key = absl::StrCat("c", i);
      ASSERT_TRUE((*t)->Increment(key, i).ok());
      snapshotted_[key] = i;
    }
    auto writer = SnapshotWriter::Open(t->get(), dir_);
    ASSERT_TRUE(writer.ok()) << writer.status();
    ASSERT_TRUE((*writer)->Write().ok());
    ASSERT_TRUE((*t)->Increment("c0", 1000).ok());  // lost with the host
  }

  std::map<std::string, int64_t> SnapshotRecords() {
    std::map<std::string, int64_t> r;
    auto meta = SnapshotFile::ReadNewest(
        Path(kSnapshotFile), [&](std::string_view k, int64_t v) { r[std::string(k)] = v; });
    EXPECT_TRUE(meta.ok()) << meta.status();
    return r;
  }

  std::map<std::string, int64_t> snapshotted_;
};

TEST_P(RestoreFault, FailsNamingTheCallKeepsTheSnapshotAndTheNextStartRestoresIt) {
  RebootedSys sys;
  sys.FailNth(GetParam().call, 1, GetParam().err, GetParam().match);
  auto failed = SelectAndOpenTable({.data_dir = dir_, .capacity = 5000, .sys = &sys});
  ASSERT_FALSE(failed.ok()) << "the injected fault was not hit";
  EXPECT_EQ(sys.injected(), 1);
  EXPECT_TRUE(absl::StrContains(failed.status().message(), Sv(SysCallName(GetParam().call))))
      << failed.status();
  EXPECT_EQ(SnapshotRecords(), snapshotted_);

  sys.Clear();
  auto table = SelectAndOpenTable({.data_dir = dir_, .capacity = 5000, .sys = &sys});
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_EQ((*table)->capacity(), 5000u);
  std::map<std::string, int64_t> restored;
  (*table)->ForEach([&](std::string_view k, int64_t v) { restored[std::string(k)] = v; });
  EXPECT_EQ(restored, snapshotted_);
  EXPECT_FALSE(std::filesystem::exists(Path(kRestoringFile)));
  // The snapshot file then grows to the new capacity, keeping the snapshot.
  auto writer = SnapshotWriter::Open(table->get(), dir_, &sys);
  ASSERT_TRUE(writer.ok()) << writer.status();
  EXPECT_EQ(SnapshotRecords(), snapshotted_);
  ASSERT_TRUE((*writer)->Write().ok());
}

INSTANTIATE_TEST_SUITE_P(
    EachCall, RestoreFault,
    ::testing::Values(
        Fault{"SetAsideRename", SysCall::kRename, "untrusted", EROFS},
        Fault{"SetAsideDirFsync", SysCall::kFsyncDir, "", EIO},
        Fault{"CreateFtruncate", SysCall::kFtruncate, kRestoringFile, ENOSPC},
        Fault{"CreateFallocate", SysCall::kFallocate, kRestoringFile, ENOSPC},
        Fault{"CreateHeaderPwrite", SysCall::kPwrite, kRestoringFile, EIO},
        Fault{"CreateFsync", SysCall::kFsync, kRestoringFile, EIO},
        Fault{"TableMsync", SysCall::kMsync, kRestoringFile, EIO},
        Fault{"RenameIntoPlace", SysCall::kRename, kRestoringFile, EIO}),
    [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace countersd
