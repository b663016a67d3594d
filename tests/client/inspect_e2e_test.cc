// `counterctl inspect` on files a real countersd wrote: valid map and
// snapshot files, truncated ones, flipped bytes in headers and in data; and
// that inspect never modifies the file it reads.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "shared/layout.h"
#include "tests/client/ctl_test_util.h"
#include "tests/e2e/daemon_harness.h"

namespace countersd::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::StartsWith;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void FlipByte(const std::string& path, off_t offset) {
  const int fd = open(path.c_str(), O_RDWR);
  ASSERT_GE(fd, 0) << path;
  unsigned char b;
  ASSERT_EQ(pread(fd, &b, 1, offset), 1);
  b ^= 0x5a;
  ASSERT_EQ(pwrite(fd, &b, 1, offset), 1);
  close(fd);
}

// Bytes, size, mtime and ctime: any write or metadata change alters one.
struct FileState {
  std::string bytes;
  struct timespec mtime, ctime;
  bool operator==(const FileState& o) const {
    return bytes == o.bytes && mtime.tv_sec == o.mtime.tv_sec && mtime.tv_nsec == o.mtime.tv_nsec &&
           ctime.tv_sec == o.ctime.tv_sec && ctime.tv_nsec == o.ctime.tv_nsec;
  }
};
FileState StateOf(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(stat(path.c_str(), &st), 0) << path;
  return FileState{ReadAll(path), st.st_mtim, st.st_ctim};
}

// One daemon writes a map and a snapshot file holding three counters (and a
// snapshot in each half), then stops cleanly. Tests work on copies.
class InspectTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ASSERT_FALSE(CounterctlPath().empty());
    dir_ = new ScopedTempDir();
    DaemonOptions options;
    options.handlers = 1;
    options.capacity = 1000;
    options.snapshot_interval = "1h";  // only the snapshots this test asks for
    options.data_dir = dir_->path();
    absl::StatusOr<std::unique_ptr<Daemon>> d = Daemon::Start(options);
    ASSERT_TRUE(d.ok()) << d.status();
    {
      CounterClient client((*d)->address());
      ASSERT_TRUE(client.Set("zeta", -3).ok());
      ASSERT_TRUE(client.Set("alpha", 1).ok());
      ASSERT_TRUE(client.Snapshot().ok());
      ASSERT_TRUE(client.Set("mid/key", 9223372036854775807).ok());
      ASSERT_TRUE(client.Snapshot().ok());
    }
    absl::StatusOr<int> status = (*d)->Terminate();
    ASSERT_TRUE(status.ok()) << status.status();
    ASSERT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << (*d)->log();
    map_ = dir_->path() + "/counters.map";
    snap_ = dir_->path() + "/counters.snap";
    ASSERT_TRUE(fs::exists(map_)) << map_;
    ASSERT_TRUE(fs::exists(snap_)) << snap_;
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(dir_, nullptr);
    ASSERT_FALSE(map_.empty()) << "the daemon did not write its files";
  }

  // A private copy of `path` in this test's own directory, named `name`
  // (default: the same file name).
  std::string CopyOf(const std::string& path, std::string name = "") {
    if (name.empty()) name = fs::path(path).filename().string();
    const std::string to = absl::StrCat(scratch_.path(), "/", name);
    fs::copy_file(path, to, fs::copy_options::overwrite_existing);
    return to;
  }

  static ScopedTempDir* dir_;
  static std::string map_, snap_;
  ScopedTempDir scratch_;
};
ScopedTempDir* InspectTest::dir_ = nullptr;
std::string InspectTest::map_, InspectTest::snap_;

const std::vector<std::string> kSortedDump = {
    "alpha                      1",
    "mid/key  9223372036854775807",
    "zeta                      -3",
};

// The value of the summary row `label` ("kind", "half 0"): the text after
// the label and its alignment blanks; "" if there is no such row.
std::string Row(const std::string& out, const std::string& label) {
  for (const std::string& line : Lines(out)) {
    if (line.rfind(label + "  ", 0) == 0) {
      const size_t v = line.find_first_not_of(' ', label.size());
      return v == std::string::npos ? "" : line.substr(v);
    }
  }
  return "";
}

std::vector<std::string> DumpLines(const std::string& out) {
  // The dump follows the summary after one blank line.
  const size_t blank = out.find("\n\n");
  if (blank == std::string::npos) return {};
  return Lines(out.substr(blank + 2));
}

TEST_F(InspectTest, ValidMapFileShowsCountsAndDumpsSortedByKey) {
  Ctl r = RunCtl({"inspect", map_});
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  EXPECT_EQ(Row(r.out, "kind"), absl::StrCat("map file, layout version ", layout::kLayoutVersion));
  EXPECT_EQ(Row(r.out, "status"), "valid");
  EXPECT_THAT(Row(r.out, "counters"), StartsWith("3 of "));
  EXPECT_EQ(Row(r.out, "clean shutdown"), "yes");
  EXPECT_TRUE(DumpLines(r.out).empty()) << "no dump without --dump";

  Ctl dump = RunCtl({"inspect", map_, "--dump"});
  ASSERT_EQ(dump.exit_code, 0) << dump.err;
  EXPECT_EQ(DumpLines(dump.out), kSortedDump);

  Ctl json = RunCtl({"--output=json", "inspect", map_, "--dump"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  google::protobuf::Struct doc = ParseJson(json.out);
  EXPECT_EQ(Field(doc, "kind").string_value(), "map");
  EXPECT_TRUE(Field(doc, "valid").bool_value());
  EXPECT_EQ(Field(doc, "count").number_value(), 3);
  EXPECT_TRUE(Field(doc, "clean_shutdown").bool_value());
  EXPECT_EQ(Field(doc, "problems").list_value().values_size(), 0);
  const auto& counters = Field(doc, "counters").list_value();
  ASSERT_EQ(counters.values_size(), 3);
  EXPECT_EQ(Field(counters.values(0).struct_value(), "key").string_value(), "alpha");
  EXPECT_EQ(Field(counters.values(2).struct_value(), "key").string_value(), "zeta");
  EXPECT_THAT(json.out, HasSubstr("\"value\":9223372036854775807")) << "int64 printed exactly";
}

TEST_F(InspectTest, ValidSnapshotFileShowsBothHalvesAndTheNewestGeneration) {
  Ctl json = RunCtl({"--output=json", "inspect", snap_, "--dump"});
  ASSERT_EQ(json.exit_code, 0) << json.err << json.out;
  google::protobuf::Struct doc = ParseJson(json.out);
  EXPECT_EQ(Field(doc, "kind").string_value(), "snapshot");
  EXPECT_TRUE(Field(doc, "valid").bool_value());
  const auto& halves = Field(doc, "halves").list_value();
  ASSERT_EQ(halves.values_size(), 2);
  double max_generation = 0;
  for (const auto& h : halves.values()) {
    EXPECT_EQ(Field(h.struct_value(), "state").string_value(), "valid");
    max_generation = std::max(max_generation, Field(h.struct_value(), "generation").number_value());
  }
  const auto& newest = Field(doc, "newest").struct_value();
  EXPECT_EQ(Field(newest, "generation").number_value(), max_generation);
  EXPECT_EQ(Field(newest, "count").number_value(), 3);
  EXPECT_EQ(Field(doc, "counters").list_value().values_size(), 3);

  Ctl text = RunCtl({"inspect", snap_, "--dump"});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_EQ(Row(text.out, "kind"), "snapshot file");
  EXPECT_EQ(Row(text.out, "status"), "valid");
  EXPECT_THAT(Row(text.out, "half 0"), StartsWith("valid: generation "));
  EXPECT_THAT(Row(text.out, "half 1"), StartsWith("valid: generation "));
  EXPECT_THAT(Row(text.out, "newest valid"), StartsWith("generation "));
  EXPECT_EQ(DumpLines(text.out), kSortedDump);
}

TEST_F(InspectTest, InspectNeverModifiesTheFileItReads) {
  const std::string map = CopyOf(map_), snap = CopyOf(snap_);
  // Also an invalid file: inspect must not "repair" it either.
  const std::string bad_path = CopyOf(snap_, "bad.snap");
  FlipByte(bad_path, 16);
  for (const std::string& path : {map, snap, bad_path}) {
    const FileState before = StateOf(path);
    for (const std::vector<std::string>& args : {std::vector<std::string>{"inspect", path},
                                                 {"inspect", path, "--dump"},
                                                 {"--output=json", "inspect", path, "--dump"}}) {
      Ctl r = RunCtl(args);
      EXPECT_LT(r.exit_code, 2) << r.err;
    }
    EXPECT_TRUE(StateOf(path) == before) << path << " changed";
  }
}

TEST_F(InspectTest, TruncatedMapFileIsInvalidAndSaysSo) {
  const std::string map = CopyOf(map_);
  fs::resize_file(map, fs::file_size(map) / 2);
  Ctl r = RunCtl({"inspect", map});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, AllOf(HasSubstr("is invalid"), HasSubstr("truncated")));
  EXPECT_THAT(Row(r.out, "status"), StartsWith("INVALID: "));
  Ctl json = RunCtl({"--output=json", "inspect", map});
  EXPECT_EQ(json.exit_code, 1);
  google::protobuf::Struct doc = ParseJson(json.out);
  EXPECT_FALSE(Field(doc, "valid").bool_value());
  EXPECT_THAT(Field(doc, "error").string_value(), HasSubstr("truncated"));
}

TEST_F(InspectTest, TruncatedSnapshotFileIsInvalid) {
  const std::string snap = CopyOf(snap_);
  fs::resize_file(snap, 6000);  // shorter than the two meta pages
  Ctl r = RunCtl({"inspect", snap});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, AllOf(HasSubstr("is invalid"), HasSubstr("too short")));

  const std::string half = CopyOf(snap_, "half.snap");
  fs::resize_file(half, 8192 + 100);  // metas intact, data gone
  Ctl h = RunCtl({"--output=json", "inspect", half});
  EXPECT_EQ(h.exit_code, 1);
  google::protobuf::Struct doc = ParseJson(h.out);
  EXPECT_FALSE(Field(doc, "valid").bool_value());
  for (const auto& v : Field(doc, "halves").list_value().values()) {
    EXPECT_EQ(Field(v.struct_value(), "state").string_value(), "invalid");
  }
}

TEST_F(InspectTest, FlippedByteInTheMapHeaderIsInvalid) {
  const std::string map = CopyOf(map_);
  FlipByte(map, 33);  // inside `capacity`, covered by the header checksum
  Ctl r = RunCtl({"inspect", map});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, AllOf(HasSubstr("is invalid"), HasSubstr("checksum")));

  const std::string magic = CopyOf(map_, "magic.map");
  FlipByte(magic, 0);
  Ctl m = RunCtl({"inspect", magic});
  EXPECT_EQ(m.exit_code, 1);
  EXPECT_THAT(m.err, HasSubstr("not a countersd map or snapshot file"));
}

// The snapshot file is [meta 0][meta 1][half 0][half 1]; generation g lives
// in half g % 2.
struct SnapshotLayout {
  uint64_t newest_generation;
  uint64_t half_size;
};
SnapshotLayout LayoutOf(const std::string& snap) {
  Ctl json = RunCtl({"--output=json", "inspect", snap});
  google::protobuf::Struct doc = ParseJson(json.out);
  const auto g = static_cast<uint64_t>(
      Field(Field(doc, "newest").struct_value(), "generation").number_value());
  return {g, (fs::file_size(snap) - 8192) / 2};
}

TEST_F(InspectTest, FlippedByteInSnapshotDataInvalidatesThatHalfOnly) {
  const std::string snap = CopyOf(snap_);
  const SnapshotLayout layout = LayoutOf(snap);
  ASSERT_GE(layout.newest_generation, 2u);
  const int bad_half = static_cast<int>(layout.newest_generation % 2);
  FlipByte(snap, static_cast<off_t>(8192 + bad_half * layout.half_size + 3));  // in a key

  Ctl json = RunCtl({"--output=json", "inspect", snap});
  EXPECT_EQ(json.exit_code, 1);
  google::protobuf::Struct doc = ParseJson(json.out);
  EXPECT_FALSE(Field(doc, "valid").bool_value());
  const auto& halves = Field(doc, "halves").list_value();
  ASSERT_EQ(halves.values_size(), 2);
  const auto& bad = halves.values(bad_half).struct_value();
  EXPECT_EQ(Field(bad, "state").string_value(), "invalid");
  EXPECT_THAT(Field(bad, "reason").string_value(), HasSubstr("data checksum mismatch"));
  EXPECT_EQ(Field(halves.values(1 - bad_half).struct_value(), "state").string_value(), "valid");
  EXPECT_EQ(Field(Field(doc, "newest").struct_value(), "generation").number_value(),
            layout.newest_generation - 1);

  Ctl text = RunCtl({"inspect", snap});
  EXPECT_EQ(text.exit_code, 1);
  EXPECT_THAT(Row(text.out, absl::StrCat("half ", bad_half)), StartsWith("INVALID: snapshot meta"));
  EXPECT_EQ(Row(text.out, "status"), "INVALID");
  EXPECT_THAT(text.err, HasSubstr(absl::StrCat("a daemon would restore generation ",
                                               layout.newest_generation - 1)));
}

TEST_F(InspectTest, FlippedByteInASnapshotMetaPageIsInvalid) {
  const std::string snap = CopyOf(snap_);
  const SnapshotLayout layout = LayoutOf(snap);
  const int bad_half = static_cast<int>(layout.newest_generation % 2);
  FlipByte(snap, bad_half * 4096 + 16);  // the generation field
  Ctl json = RunCtl({"--output=json", "inspect", snap});
  EXPECT_EQ(json.exit_code, 1);
  google::protobuf::Struct doc = ParseJson(json.out);
  const auto& bad = Field(doc, "halves").list_value().values(bad_half).struct_value();
  EXPECT_EQ(Field(bad, "state").string_value(), "invalid");
  EXPECT_THAT(Field(bad, "reason").string_value(), HasSubstr("checksum"));
}

TEST_F(InspectTest, MissingFileExits3AndOtherFilesExit1) {
  Ctl missing = RunCtl({"inspect", scratch_.path() + "/nope"});
  EXPECT_EQ(missing.exit_code, 3);
  EXPECT_THAT(missing.err, HasSubstr("nope"));

  const std::string text = scratch_.path() + "/notes.txt";
  std::ofstream(text) << "hello, this is not a counters file\n";
  Ctl other = RunCtl({"inspect", text});
  EXPECT_EQ(other.exit_code, 1);
  EXPECT_THAT(other.err, HasSubstr("not a countersd map or snapshot file"));

  const std::string tiny = scratch_.path() + "/tiny";
  std::ofstream(tiny) << "CNT";
  EXPECT_EQ(RunCtl({"inspect", tiny}).exit_code, 1);

  Ctl dir = RunCtl({"inspect", scratch_.path()});
  EXPECT_EQ(dir.exit_code, 1);
  EXPECT_THAT(dir.err, HasSubstr("not a regular file"));
}

}  // namespace
}  // namespace countersd::testing
