// Files of a data directory are opened without following links and only
// when they are regular files (OpenDataFile, shared/sys.h): a symlink named
// counters.snap must never make the snapshot writer truncate and write the
// file it points to, and a FIFO must not hang an open.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "gtest/gtest.h"
#include "shared/counter_table.h"
#include "shared/snapshot_file.h"
#include "tests/shared/table_fixture.h"

namespace countersd {
namespace {

using DataFile = TempDirTest;

std::string Contents(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

TEST_F(DataFile, SnapshotFileThatIsASymlinkIsRefusedAndItsTargetUntouched) {
  const std::string target = Path("outside.txt");
  { std::ofstream(target) << "precious"; }
  std::filesystem::create_symlink(target, Path("counters.snap"));
  auto f = SnapshotFile::OpenForWrite(Path("counters.snap"), 100);
  EXPECT_EQ(f.status().code(), absl::StatusCode::kFailedPrecondition) << f.status();
  EXPECT_NE(std::string(f.status().message()).find("symbolic link"), std::string::npos);
  EXPECT_EQ(SnapshotFile::Check(Path("counters.snap")).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Contents(target), "precious");
}

TEST_F(DataFile, MapFileThatIsASymlinkIsRefusedByEveryOpen) {
  MustCreate(100, "real.map");
  std::filesystem::create_symlink(Path("real.map"), Path("counters.map"));
  for (const absl::Status& st :
       {CounterTable::Open(Path("counters.map")).status(),
        CounterTable::OpenReadOnly(Path("counters.map")).status()}) {
    EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition) << st;
    EXPECT_NE(std::string(st.message()).find("symbolic link"), std::string::npos) << st;
  }
  EXPECT_FALSE(CounterTable::Create(Path("counters.map"), 100).ok());
  EXPECT_TRUE(std::filesystem::is_symlink(Path("counters.map")));
}

TEST_F(DataFile, FilesThatAreNotRegularAreRefusedWithoutBlocking) {
  ASSERT_EQ(mkfifo(Path("fifo.map").c_str(), 0600), 0);
  std::filesystem::create_directory(Path("dir.snap"));
  absl::Status fifo = CounterTable::OpenReadOnly(Path("fifo.map")).status();
  EXPECT_EQ(fifo.code(), absl::StatusCode::kFailedPrecondition) << fifo;
  EXPECT_NE(std::string(fifo.message()).find("not a regular file"), std::string::npos) << fifo;
  EXPECT_FALSE(SnapshotFile::OpenForWrite(Path("dir.snap"), 100).ok());
}

}  // namespace
}  // namespace countersd
