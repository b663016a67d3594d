// The power-loss simulator's model (tests/shared/power_loss_sys.h), checked
// on plain files: what each call makes durable, how a crash image is made.
#include "tests/shared/power_loss_sys.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <string>

#include "gtest/gtest.h"
#include "tests/shared/table_fixture.h"

namespace countersd::testing {
namespace {

class PowerLossSysTest : public TempDirTest {
 protected:
  // Creates `name` through `sys` with `pages` pages of `fill`, and returns
  // its descriptor.
  int CreateFile(PowerLossSys& sys, const std::string& name, int pages, char fill) {
    absl::StatusOr<int> fd = sys.Open(Path(name), O_RDWR | O_CREAT | O_EXCL, 0600);
    EXPECT_TRUE(fd.ok()) << fd.status();
    const std::string bytes(pages * kSimPageSize, fill);
    EXPECT_TRUE(sys.Pwrite(*fd, bytes.data(), bytes.size(), 0, name).ok());
    return *fd;
  }
};

TEST_F(PowerLossSysTest, AWriteIsDirtyUntilFsyncAndANameUntilFsyncDir) {
  PowerLossSys sys(dir_, "boot");
  const int fd = CreateFile(sys, "f", 3, 'a');
  CrashState s = sys.Capture();
  EXPECT_EQ(s.inconsistency, "");
  ASSERT_EQ(s.pending.size(), 1u);
  EXPECT_EQ(s.pending[0].Describe(), "create f");
  ASSERT_EQ(s.files.size(), 1u);
  EXPECT_EQ(s.files.begin()->second.dirty, (std::vector<uint64_t>{0, 1, 2}));
  EXPECT_TRUE(Materialize(s, CrashChoice{}).empty());  // the name is not durable yet

  ASSERT_TRUE(sys.Fsync(fd, "f").ok());
  s = sys.Capture();
  EXPECT_TRUE(s.files.begin()->second.dirty.empty());
  EXPECT_TRUE(Materialize(s, CrashChoice{}).empty());  // A4: fsync does not cover the name
  CrashChoice with_name;
  with_name.dir_ops = 1;
  EXPECT_EQ(Materialize(s, with_name).at("f"), std::string(3 * kSimPageSize, 'a'));

  ASSERT_TRUE(sys.FsyncDir(dir_).ok());
  s = sys.Capture();
  EXPECT_TRUE(s.pending.empty());
  EXPECT_EQ(Materialize(s, CrashChoice{}).at("f"), std::string(3 * kSimPageSize, 'a'));
  ASSERT_TRUE(sys.Close(fd).ok());
}

TEST_F(PowerLossSysTest, MsyncMakesOnlyItsRangeDurable) {
  PowerLossSys sys(dir_, "boot");
  const int fd = CreateFile(sys, "f", 4, 'a');
  ASSERT_TRUE(sys.Fsync(fd, "f").ok());
  absl::StatusOr<void*> p = sys.Mmap(4 * kSimPageSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, "f");
  ASSERT_TRUE(p.ok()) << p.status();
  char* base = static_cast<char*>(*p);
  base[0] = 'x';                     // page 0
  base[2 * kSimPageSize + 7] = 'y';  // page 2
  EXPECT_EQ(sys.Capture().files.begin()->second.dirty, (std::vector<uint64_t>{0, 2}));
  ASSERT_TRUE(sys.Msync(base + 2 * kSimPageSize + 100, 10, "f").ok());  // rounds down to page 2
  EXPECT_EQ(sys.Capture().files.begin()->second.dirty, (std::vector<uint64_t>{0}));
  ASSERT_TRUE(sys.Munmap(base, 4 * kSimPageSize).ok());
  ASSERT_TRUE(sys.Close(fd).ok());
}

TEST_F(PowerLossSysTest, ATornPageHoldsEachSectorOldOrNew) {
  PowerLossSys sys(dir_, "boot");
  const int fd = CreateFile(sys, "f", 1, 'a');
  ASSERT_TRUE(sys.Fsync(fd, "f").ok());
  ASSERT_TRUE(sys.FsyncDir(dir_).ok());
  const std::string b(kSimPageSize, 'b');
  ASSERT_TRUE(sys.Pwrite(fd, b.data(), b.size(), 0, "f").ok());
  const CrashState s = sys.Capture();
  CrashChoice torn;
  torn.files[s.files.begin()->first] = {false, {0x05}};  // sectors 0 and 2 new
  const std::string image = Materialize(s, torn).at("f");
  for (size_t sector = 0; sector < kSimSectorsPerPage; ++sector) {
    const char want = sector == 0 || sector == 2 ? 'b' : 'a';
    EXPECT_EQ(image.substr(sector * kSimSectorSize, kSimSectorSize),
              std::string(kSimSectorSize, want))
        << "sector " << sector;
  }
  ASSERT_TRUE(sys.Close(fd).ok());
}

TEST_F(PowerLossSysTest, DirectoryOperationsSurviveAsAPrefix) {
  PowerLossSys sys(dir_, "boot");
  const int fd = CreateFile(sys, "a", 1, 'a');
  ASSERT_TRUE(sys.Fsync(fd, "a").ok());
  ASSERT_TRUE(sys.Close(fd).ok());
  ASSERT_TRUE(sys.FsyncDir(dir_).ok());
  ASSERT_TRUE(sys.Rename(Path("a"), Path("b")).ok());
  ASSERT_TRUE(sys.Unlink(Path("b")).ok());
  const CrashState s = sys.Capture();
  EXPECT_EQ(s.inconsistency, "");
  ASSERT_EQ(s.pending.size(), 2u);
  CrashChoice c;
  EXPECT_TRUE(Materialize(s, c).count("a"));
  c.dir_ops = 1;
  EXPECT_TRUE(Materialize(s, c).count("b"));
  EXPECT_FALSE(Materialize(s, c).count("a"));
  c.dir_ops = 2;
  EXPECT_TRUE(Materialize(s, c).empty());
}

TEST_F(PowerLossSysTest, FilesAndSizesFromBeforeAreDurable) {
  {
    int fd = ::open(Path("old").c_str(), O_WRONLY | O_CREAT, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::pwrite(fd, "hello", 5, 0), 5);
    ::close(fd);
  }
  PowerLossSys sys(dir_, "boot");
  absl::StatusOr<int> fd = sys.Open(Path("old"), O_RDWR, 0);
  ASSERT_TRUE(fd.ok());
  ASSERT_TRUE(sys.Ftruncate(*fd, 3 * kSimPageSize, "old").ok());
  const CrashState s = sys.Capture();
  CrashChoice c;
  EXPECT_EQ(Materialize(s, c).at("old"), "hello");  // A3: the durable size
  c.files[s.files.begin()->first] = {true,
                                     std::vector<uint8_t>(s.files.begin()->second.dirty.size(), 0)};
  std::string grown = Materialize(s, c).at("old");
  EXPECT_EQ(grown.size(), 3 * kSimPageSize);  // the current size, zeros past "hello"
  EXPECT_EQ(grown.substr(0, 6), std::string("hello\0", 6));
  ASSERT_TRUE(sys.Close(*fd).ok());
}

TEST_F(PowerLossSysTest, AChangeMadeAroundTheSysIsReported) {
  PowerLossSys sys(dir_, "boot");
  int fd = ::open(Path("sneaky").c_str(), O_WRONLY | O_CREAT, 0600);
  ASSERT_GE(fd, 0);
  ::close(fd);
  EXPECT_NE(sys.Capture().inconsistency.find("sneaky"), std::string::npos);
}

TEST_F(PowerLossSysTest, ChoicesAreTheExtremesAndASeededSample) {
  PowerLossSys sys(dir_, "boot");
  const int fd = CreateFile(sys, "f", 6, 'a');
  const CrashState s = sys.Capture();
  const std::vector<CrashChoice> one = CrashChoicesFor(s, 7, 5);
  const std::vector<CrashChoice> again = CrashChoicesFor(s, 7, 5);
  ASSERT_EQ(one.size(), again.size());
  for (size_t i = 0; i < one.size(); ++i) EXPECT_EQ(one[i].Describe(s), again[i].Describe(s));
  // Nothing, and everything, with each prefix of the one pending create.
  EXPECT_TRUE(Materialize(s, one[0]).empty());
  EXPECT_EQ(Materialize(s, one[3]).at("f"), std::string(6 * kSimPageSize, 'a'));
  ASSERT_TRUE(sys.Close(fd).ok());
}

}  // namespace
}  // namespace countersd::testing
