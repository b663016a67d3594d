// The data directory's hygiene at start (server/data_dir_permissions.h,
// shared/sys.h OpenDataFile): a directory other users can write is refused
// with the fix named, one owned by another user is used with a warning, and
// a LOCK that is a symbolic link is never followed.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "shared/data_dir.h"
#include "tests/e2e/daemon_harness.h"

namespace countersd::testing {
namespace {

using ::testing::HasSubstr;

absl::StatusOr<CommandResult> StartIn(const std::string& dir) {
  return RunCommand({CountersdPath(), "--listen=127.0.0.1:0", absl::StrCat("--data-dir=", dir),
                     "--handlers=1"});
}

TEST(DataDirTest, WorldWritableDirectoryIsRefusedNamingTheFix) {
  ScopedTempDir dir;
  ASSERT_EQ(chmod(dir.path().c_str(), 0777), 0);
  absl::StatusOr<CommandResult> r = StartIn(dir.path());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 1) << r->err;
  EXPECT_THAT(r->err, HasSubstr("writable by every user (mode 0777)"));
  EXPECT_THAT(r->err, HasSubstr(absl::StrCat("chmod o-w ", dir.path())));
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/" + kMapFile));
}

TEST(DataDirTest, DirectoryWritableByAnotherGroupIsRefused) {
  ScopedTempDir dir;
  const gid_t other = getegid() + 4242;
  ASSERT_EQ(chown(dir.path().c_str(), geteuid(), other), 0);
  ASSERT_EQ(chmod(dir.path().c_str(), 0770), 0);
  absl::StatusOr<CommandResult> r = StartIn(dir.path());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 1) << r->err;
  EXPECT_THAT(r->err, HasSubstr(absl::StrCat("is writable by group ", other)));
}

TEST(DataDirTest, GroupWritableByTheDaemonsOwnGroupIsAccepted) {
  // As Kubernetes mounts a volume with fsGroup: g+rwx, the daemon's group.
  DaemonOptions options;
  ScopedTempDir dir;
  ASSERT_EQ(chmod(dir.path().c_str(), 02770), 0);
  options.data_dir = dir.path();
  options.handlers = 1;
  auto daemon = Daemon::Start(options);
  EXPECT_TRUE(daemon.ok()) << daemon.status();
}

TEST(DataDirTest, DirectoryOwnedByAnotherUserIsUsedWithAWarning) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to give the directory away";
  DaemonOptions options;
  ScopedTempDir dir;
  ASSERT_EQ(chown(dir.path().c_str(), 4242, getegid()), 0);
  options.data_dir = dir.path();
  options.handlers = 1;
  auto daemon = Daemon::Start(options);
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  const auto lines = (*daemon)->LogLinesWithMsg(
      "data directory is owned by another user: that user can replace the counter files");
  ASSERT_EQ(lines.size(), 1u) << (*daemon)->log();
  EXPECT_THAT(lines[0], HasSubstr("\"owner_uid\":4242"));
}

TEST(DataDirTest, LockFileThatIsASymlinkIsRefusedAndItsTargetUntouched) {
  ScopedTempDir dir, outside;
  const std::string target = outside.path() + "/precious";
  { std::ofstream(target) << "precious"; }
  std::filesystem::create_symlink(target, dir.path() + "/" + kLockFile);
  absl::StatusOr<CommandResult> r = StartIn(dir.path());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 1) << r->err;
  EXPECT_THAT(r->err, HasSubstr("is a symbolic link"));
  std::ifstream in(target);
  std::string contents((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(contents, "precious");
}

}  // namespace
}  // namespace countersd::testing
