// A temporary directory with a fresh table in it, for the table tests.
#ifndef COUNTERSD_TESTS_SHARED_TABLE_FIXTURE_H_
#define COUNTERSD_TESTS_SHARED_TABLE_FIXTURE_H_

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "shared/counter_table.h"

namespace countersd {

// Overwrites n bytes of the file at `offset` (to damage a file on purpose).
inline void Poke(const std::string& path, off_t offset, const void* bytes, size_t n) {
  int fd = open(path.c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(pwrite(fd, bytes, n, offset), static_cast<ssize_t>(n));
  close(fd);
}

class TempDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "countersd-test-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Path(const std::string& name) const { return dir_ + "/" + name; }

  std::unique_ptr<CounterTable> MustCreate(uint64_t capacity, const std::string& name = "t.map") {
    auto t = CounterTable::Create(Path(name), capacity);
    EXPECT_TRUE(t.ok()) << t.status();
    return t.ok() ? std::move(*t) : nullptr;
  }

  std::string dir_;
};

}  // namespace countersd

#endif  // COUNTERSD_TESTS_SHARED_TABLE_FIXTURE_H_
