// Reading a sparse file on a full tmpfs (issue 10, fault 3: "a restart while
// the disk is still full takes SIGBUS in Open"). A map or snapshot file left
// by an older version has holes; on tmpfs even a read fault on a hole of a
// MAP_SHARED mapping must allocate a page, so on a full tmpfs it is SIGBUS.
// The read-only looks (CounterTable::OpenReadOnly, SnapshotFile::Check and
// ReadNewest: start-up and `counterctl inspect`) must read such a file
// without faulting, and start-up must fail with a clear error, never SIGBUS.
// Each test builds the file on an ordinary directory, copies it sparsely
// (only its non-zero pages written) onto a 1 MiB tmpfs, fills the tmpfs,
// and runs the code under test in a forked child.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "server/table_selection.h"
#include "shared/data_dir.h"
#include "shared/snapshot_file.h"
#include "tests/shared/full_disk.h"

namespace countersd {
namespace {

constexpr size_t kPage = 4096;
constexpr int kKeys = 100;

class SparseReadOnFullDisk : public FullDisk {
 protected:
  void SetUp() override {
    FullDisk::SetUp();
    if (IsSkipped()) return;
    std::string tmpl =
        (std::filesystem::temp_directory_path() / "countersd-sparse-src-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    src_ = tmpl;
  }
  void TearDown() override {
    if (!src_.empty()) std::filesystem::remove_all(src_);
    FullDisk::TearDown();
  }
  std::string Src(const std::string& name) const { return src_ + "/" + name; }

  // A table of kKeys counters ("key/i" = i), shut down cleanly, in the
  // source directory.
  void MakeTable(const std::string& path) {
    auto t = CounterTable::Create(path, 50000);  // ~12 MB, mostly zero
    ASSERT_TRUE(t.ok()) << t.status();
    for (int i = 0; i < kKeys; ++i) ASSERT_TRUE((*t)->Increment(absl::StrCat("key/", i), i).ok());
    ASSERT_TRUE((*t)->MarkCleanShutdown().ok());
  }

  // A snapshot file holding one generation of kKeys records (half 1; meta
  // 0 and most of both halves stay zero).
  void MakeSnapshot(const std::string& path) {
    auto f = SnapshotFile::OpenForWrite(path, 20000);  // ~6.8 MB
    ASSERT_TRUE(f.ok()) << f.status();
    std::string records;
    for (int i = 0; i < kKeys; ++i) AppendSnapshotRecord(&records, absl::StrCat("key/", i), i);
    ASSERT_TRUE((*f)->Write(records, kKeys, 20000).ok());
  }

  // Copies `from` to `to` as a sparse file: the same size, but only the
  // non-zero pages written (only the first one if `header_only`).
  void CopySparsely(const std::string& from, const std::string& to, bool header_only = false) {
    const uint64_t size = std::filesystem::file_size(from);
    int in = open(from.c_str(), O_RDONLY);
    int out = open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
    ASSERT_GE(in, 0);
    ASSERT_GE(out, 0);
    ASSERT_EQ(ftruncate(out, static_cast<off_t>(size)), 0);
    char page[kPage];
    for (uint64_t off = 0; off < (header_only ? kPage : size); off += kPage) {
      ASSERT_EQ(pread(in, page, kPage, static_cast<off_t>(off)), static_cast<ssize_t>(kPage));
      if (std::all_of(page, page + kPage, [](char c) { return c == 0; })) continue;
      ASSERT_EQ(pwrite(out, page, kPage, static_cast<off_t>(off)), static_cast<ssize_t>(kPage));
    }
    close(in);
    close(out);
    struct stat st;
    ASSERT_EQ(stat(to.c_str(), &st), 0);
    ASSERT_LT(uint64_t(st.st_blocks) * 512, uint64_t(st.st_size)) << to << " is not sparse";
  }

  // Fills the tmpfs: writes a filler file until no page is left.
  void FillDisk() {
    int fd = open(Path("filler").c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
    ASSERT_GE(fd, 0);
    char page[kPage] = {1};
    ssize_t n;
    while ((n = write(fd, page, kPage)) == static_cast<ssize_t>(kPage)) {
    }
    const int err = errno;
    close(fd);
    ASSERT_EQ(n, -1);
    ASSERT_EQ(err, ENOSPC);
  }

  std::string src_;
};

// Fails the test unless the child exited with 0; names what 2, 3... meant.
void ExpectExitedCleanly(int status, const char* codes) {
  ASSERT_TRUE(WIFEXITED(status)) << "killed by signal " << WTERMSIG(status) << " ("
                                 << strsignal(WTERMSIG(status)) << ")";
  EXPECT_EQ(WEXITSTATUS(status), 0) << codes;
}

// A Sys that counts Pread calls: which path a read-only look took.
class PreadCountingSys : public Sys {
 public:
  absl::Status Pread(int fd, void* buf, size_t len, off_t offset, std::string_view what) override {
    ++preads;
    return Sys::Pread(fd, buf, len, offset, what);
  }
  int preads = 0;
};

// On an ordinary directory (no root needed): a fully allocated file stays on
// the shared mapping, a sparse one is read, and both read the same.
using ReadOnlyMap = TempDirTest;

TEST_F(ReadOnlyMap, FullyAllocatedFilesAreMappedAndSparseOnesRead) {
  { ASSERT_NE(MustCreate(50000, kMapFile), nullptr); }
  ASSERT_TRUE(SnapshotFile::OpenForWrite(Path(kSnapshotFile), 20000).ok());
  for (const char* name : {kMapFile, kSnapshotFile}) {
    PreadCountingSys sys;
    if (name == std::string(kMapFile)) {
      ASSERT_TRUE(CounterTable::OpenReadOnly(Path(name), &sys).ok());
    } else {
      ASSERT_TRUE(SnapshotFile::Check(Path(name), &sys).ok());
    }
    EXPECT_EQ(sys.preads, 0) << name << " is fully allocated: no copy";
  }
  // Punch holes into the map's slots: the same table, now sparse.
  int fd = open(Path(kMapFile).c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  const off_t size = static_cast<off_t>(std::filesystem::file_size(Path(kMapFile)));
  ASSERT_EQ(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, size / 2, size / 2), 0);
  close(fd);
  PreadCountingSys sys;
  auto t = CounterTable::OpenReadOnly(Path(kMapFile), &sys);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_GT(sys.preads, 0);
  EXPECT_EQ((*t)->Info().capacity, 50000u);
}

TEST_F(ReadOnlyMap, PreadPastTheEndIsOutOfRange) {
  int fd = open(Path("short").c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, "abc", 3), 3);
  char buf[8] = {};
  EXPECT_TRUE(RealSys()->Pread(fd, buf, 3, 0, "short").ok());
  EXPECT_EQ(std::string(buf, 3), "abc");
  const absl::Status s = RealSys()->Pread(fd, buf, 8, 0, "short");
  close(fd);
  EXPECT_TRUE(absl::IsOutOfRange(s)) << s;
}

TEST_F(SparseReadOnFullDisk, ReadOnlyOpenOfASparseMapNeverTakesSigbus) {
  MakeTable(Src(kMapFile));
  CopySparsely(Src(kMapFile), Path(kMapFile));
  FillDisk();
  const int status = InChild([this] {
    auto t = CounterTable::OpenReadOnly(Path(kMapFile));
    if (!t.ok()) {
      fprintf(stderr, "OpenReadOnly: %s\n", t.status().ToString().c_str());
      return 2;
    }
    std::map<std::string, int64_t> seen;
    (*t)->ForEach([&](std::string_view k, int64_t v) { seen[std::string(k)] = v; });
    if (seen.size() != kKeys || seen["key/7"] != 7 || !(*t)->Info().clean_shutdown) return 3;
    return 0;
  });
  ExpectExitedCleanly(status, "2: OpenReadOnly failed; 3: it read other counters");
}

TEST_F(SparseReadOnFullDisk, ReadOnlyOpenOfAMapWithOnlyItsHeaderNeverTakesSigbus) {
  MakeTable(Src(kMapFile));
  CopySparsely(Src(kMapFile), Path(kMapFile), /*header_only=*/true);
  FillDisk();
  const int status = InChild([this] {
    // The holes read as zeros: an empty table, or FAILED_PRECONDITION if
    // validation finds a zeroed region inconsistent; never a crash.
    auto t = CounterTable::OpenReadOnly(Path(kMapFile));
    if (t.ok()) return (*t)->Info().live == 0 ? 0 : 3;
    fprintf(stderr, "OpenReadOnly: %s\n", t.status().ToString().c_str());
    return absl::IsFailedPrecondition(t.status()) ? 0 : 2;
  });
  ExpectExitedCleanly(status, "2: OpenReadOnly failed with another error; 3: counters appeared");
}

TEST_F(SparseReadOnFullDisk, SnapshotReadersOfASparseFileNeverTakeSigbus) {
  MakeSnapshot(Src(kSnapshotFile));
  CopySparsely(Src(kSnapshotFile), Path(kSnapshotFile));
  FillDisk();
  const int status = InChild([this] {
    auto checks = SnapshotFile::Check(Path(kSnapshotFile));
    if (!checks.ok()) {
      fprintf(stderr, "Check: %s\n", checks.status().ToString().c_str());
      return 2;
    }
    if (!(*checks)[0].never_written || !(*checks)[1].status.ok()) return 3;
    std::map<std::string, int64_t> seen;
    auto meta = SnapshotFile::ReadNewest(
        Path(kSnapshotFile), [&](std::string_view k, int64_t v) { seen[std::string(k)] = v; });
    if (!meta.ok()) {
      fprintf(stderr, "ReadNewest: %s\n", meta.status().ToString().c_str());
      return 4;
    }
    return meta->generation == 1 && seen.size() == kKeys && seen["key/7"] == 7 ? 0 : 5;
  });
  ExpectExitedCleanly(status,
                      "2: Check failed; 3: it judged the halves wrongly; 4: ReadNewest failed; "
                      "5: it read other records");
}

// Start-up on the full disk: the read-only look succeeds, the map is trusted
// (clean shutdown), and the writable Open must allocate the holes before it
// reads anything through its shared mapping: RESOURCE_EXHAUSTED, not SIGBUS.
class SparseStartUp : public SparseReadOnFullDisk, public ::testing::WithParamInterface<bool> {};

TEST_P(SparseStartUp, FailsWithResourceExhaustedNeverSigbus) {
  MakeTable(Src(kMapFile));
  MakeSnapshot(Src(kSnapshotFile));
  CopySparsely(Src(kMapFile), Path(kMapFile), /*header_only=*/GetParam());
  CopySparsely(Src(kSnapshotFile), Path(kSnapshotFile));
  FillDisk();
  const int status = InChild([this] {
    TableSelectionOptions opt;
    opt.data_dir = dir_;
    opt.capacity = 50000;
    auto t = SelectAndOpenTable(opt);
    if (t.ok()) return 2;
    fprintf(stderr, "SelectAndOpenTable: %s\n", t.status().ToString().c_str());
    return absl::IsResourceExhausted(t.status()) ? 0 : 3;
  });
  ExpectExitedCleanly(status, "2: it started on a full disk; 3: another error");
}

INSTANTIATE_TEST_SUITE_P(Map, SparseStartUp, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "HeaderOnly" : "DataPages"; });

}  // namespace
}  // namespace countersd
