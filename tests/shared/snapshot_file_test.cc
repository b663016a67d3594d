#include "shared/snapshot_file.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <zlib.h>

#include <filesystem>
#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "shared/snapshot_format.h"
#include "tests/shared/table_fixture.h"

namespace countersd {
namespace {

using Snapshot = TempDirTest;
using Records = std::map<std::string, int64_t>;

std::string Encode(const Records& r) {
  std::string out;
  for (auto& [k, v] : r) AppendSnapshotRecord(&out, k, v);
  return out;
}

absl::StatusOr<std::pair<SnapshotMetaInfo, Records>> ReadBack(const std::string& path) {
  Records r;
  auto meta =
      SnapshotFile::ReadNewest(path, [&](std::string_view k, int64_t v) { r[std::string(k)] = v; });
  if (!meta.ok()) return meta.status();
  return std::make_pair(*meta, r);
}

void FlipByte(const std::string& path, off_t offset) {
  int fd = open(path.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  char c;
  ASSERT_EQ(pread(fd, &c, 1, offset), 1);
  c ^= 0x5a;
  ASSERT_EQ(pwrite(fd, &c, 1, offset), 1);
  close(fd);
}

constexpr off_t kHalf0 = snapshot_format::kDataStart;

std::string ReadBytes(const std::string& path, off_t offset, size_t n) {
  std::string out(n, '\0');
  int fd = open(path.c_str(), O_RDONLY);
  EXPECT_GE(fd, 0);
  EXPECT_EQ(pread(fd, out.data(), n, offset), static_cast<ssize_t>(n));
  close(fd);
  return out;
}

// The file is a backup format, copied between hosts: every integer is
// little-endian at the offsets snapshot_format.h documents, on every host.
TEST_F(Snapshot, MetaAndRecordsAreLittleEndianAtTheDocumentedOffsets) {
  namespace sf = snapshot_format;
  auto f = SnapshotFile::OpenForWrite(Path("s.snap"), 10);
  ASSERT_TRUE(f.ok()) << f.status();
  Records r = {{"ab", 0x0102030405060708}};
  auto m = (*f)->Write(Encode(r), r.size(), 10);  // generation 1: half 1, meta 1
  ASSERT_TRUE(m.ok()) << m.status();
  const std::string meta = ReadBytes(Path("s.snap"), sf::kMetaPage, sf::kMetaSize);
  auto le = [](uint64_t v, size_t n) {
    std::string b;
    for (size_t i = 0; i < n; ++i) b.push_back(static_cast<char>(v >> (8 * i)));
    return b;
  };
  EXPECT_EQ(meta.substr(sf::kMagicOffset, 8), "CNTRSNAP");
  EXPECT_EQ(meta.substr(sf::kVersionOffset, 4), le(sf::kSnapshotVersion, 4));
  EXPECT_EQ(meta.substr(sf::kHalfOffset, 4), le(1, 4));
  EXPECT_EQ(meta.substr(sf::kGenerationOffset, 8), le(1, 8));
  // The record, then (format 2) the log's marks: floor, no regions, tag.
  EXPECT_EQ(meta.substr(sf::kDataLenOffset, 8), le(2 + 2 + 8 + 8 + 4 + 4, 8));
  EXPECT_EQ(meta.substr(sf::kCountersOffset, 8), le(1, 8));
  EXPECT_EQ(meta.substr(sf::kCapacityOffset, 8), le(10, 8));
  EXPECT_EQ(meta.substr(sf::kUnixNsOffset, 8), le(static_cast<uint64_t>(m->unix_ns), 8));
  const uint64_t half_size =
      static_cast<uint8_t>(meta[sf::kHalfSizeOffset]) |
      uint64_t{static_cast<uint8_t>(meta[sf::kHalfSizeOffset + 1])} << 8 |
      uint64_t{static_cast<uint8_t>(meta[sf::kHalfSizeOffset + 2])} << 16;
  ASSERT_GE(half_size, 10 * sf::kMaxRecord);
  EXPECT_EQ(ReadBytes(Path("s.snap"), sf::kDataStart + half_size, 28),
            std::string("\x02\x00" "ab" "\x08\x07\x06\x05\x04\x03\x02\x01"
                        "\0\0\0\0\0\0\0\0" "\0\0\0\0" "WALM", 28));
}

TEST_F(Snapshot, WriteThenReadNewestRoundTrips) {
  auto f = SnapshotFile::OpenForWrite(Path("s.snap"), 1000);
  ASSERT_TRUE(f.ok()) << f.status();
  Records r1 = {{"a", 1}, {"b", -2}, {std::string(160, 'k'), INT64_MIN}};
  auto m1 = (*f)->Write(Encode(r1), r1.size(), 1000);
  ASSERT_TRUE(m1.ok()) << m1.status();
  EXPECT_EQ(m1->generation, 1u);
  Records r2 = {{"a", 2}};
  auto m2 = (*f)->Write(Encode(r2), r2.size(), 1000);
  ASSERT_TRUE(m2.ok());
  EXPECT_EQ(m2->generation, 2u);

  auto back = ReadBack(Path("s.snap"));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->first.generation, 2u);
  EXPECT_EQ(back->first.counters, 1u);
  EXPECT_EQ(back->second, r2);
}

TEST_F(Snapshot, CorruptNewestHalfFallsBackToThePreviousGeneration) {
  auto f = SnapshotFile::OpenForWrite(Path("s.snap"), 1000);
  Records r1 = {{"x", 10}}, r2 = {{"x", 20}};
  ASSERT_TRUE((*f)->Write(Encode(r1), 1, 1000).ok());  // generation 1 -> half 1
  ASSERT_TRUE((*f)->Write(Encode(r2), 1, 1000).ok());  // generation 2 -> half 0
  f->reset();
  FlipByte(Path("s.snap"), kHalf0 + 3);  // inside generation 2's data
  auto checks = SnapshotFile::Check(Path("s.snap"));
  ASSERT_TRUE(checks.ok());
  EXPECT_EQ((*checks)[0].status.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(std::string((*checks)[0].status.message()).find("data checksum"), std::string::npos);
  EXPECT_TRUE((*checks)[1].status.ok());
  auto back = ReadBack(Path("s.snap"));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->first.generation, 1u);
  EXPECT_EQ(back->second, r1);
}

TEST_F(Snapshot, BothHalvesCorruptIsAnErrorNamingBoth) {
  auto f = SnapshotFile::OpenForWrite(Path("s.snap"), 1000);
  ASSERT_TRUE((*f)->Write(Encode({{"x", 1}}), 1, 1000).ok());
  ASSERT_TRUE((*f)->Write(Encode({{"x", 2}}), 1, 1000).ok());
  f->reset();
  FlipByte(Path("s.snap"), 10);         // meta 0
  FlipByte(Path("s.snap"), 4096 + 10);  // meta 1
  auto back = ReadBack(Path("s.snap"));
  EXPECT_EQ(back.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(std::string(back.status().message()).find("meta 0"), std::string::npos);
  EXPECT_NE(std::string(back.status().message()).find("meta 1"), std::string::npos);
  // A writer never overwrites it: it sets it aside and starts a new file
  // (storage_fault_test.cc checks the file kept aside byte for byte).
  SnapshotOpenReport report;
  auto w = SnapshotFile::OpenForWrite(Path("s.snap"), 1000, RealSys(), &report);
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ((*w)->generation(), 0u);
  EXPECT_TRUE(report.created);
  EXPECT_NE(report.set_aside_as.find("s.snap.corrupt-"), std::string::npos) << report.set_aside_as;
  EXPECT_NE(report.invalid_reason.find("meta 0"), std::string::npos) << report.invalid_reason;
  EXPECT_TRUE(std::filesystem::exists(Path(report.set_aside_as)));
}

TEST_F(Snapshot, ReopenedWriterContinuesTheGenerationSequence) {
  {
    auto f = SnapshotFile::OpenForWrite(Path("s.snap"), 100);
    for (int i = 0; i < 3; ++i) ASSERT_TRUE((*f)->Write(Encode({{"k", i}}), 1, 100).ok());
  }
  auto f = SnapshotFile::OpenForWrite(Path("s.snap"), 100);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ((*f)->generation(), 3u);
  auto m = (*f)->Write(Encode({{"k", 9}}), 1, 100);
  EXPECT_EQ(m->generation, 4u);
}

TEST_F(Snapshot, MissingOrTruncatedFileIsReportedNotCrashed) {
  EXPECT_EQ(SnapshotFile::Check(Path("none.snap")).status().code(), absl::StatusCode::kNotFound);
  {
    auto f = SnapshotFile::OpenForWrite(Path("s.snap"), 100);
    ASSERT_TRUE((*f)->Write(Encode({{"k", 1}}), 1, 100).ok());
  }
  truncate(Path("s.snap").c_str(), 5000);
  EXPECT_EQ(SnapshotFile::Check(Path("s.snap")).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

// Fails msync of one named object once, with EIO, as a dying disk would.
class FailingMsync : public Sys {
 public:
  explicit FailingMsync(std::string what) : what_(std::move(what)) {}
  absl::Status Msync(void* addr, size_t len, std::string_view what) override {
    if (what == what_ && armed_) {
      armed_ = false;
      return ErrnoToStatus(EIO, absl::StrCat("msync(", std::string(what), ")"));
    }
    return Sys::Msync(addr, len, what);
  }
  bool armed_ = true;

 private:
  std::string what_;
};

// A crafted meta page with a valid checksum whose half_size makes
// kDataStart + k * half_size wrap around: the bounds check must see it
// (it once passed, and the data checksum then read far out of bounds).
TEST_F(Snapshot, MetaWhoseDataRangeOverflowsIsInvalidNotRead) {
  namespace sf = snapshot_format;
  auto f = SnapshotFile::OpenForWrite(Path("s.snap"), 10);
  ASSERT_TRUE(f.ok()) << f.status();
  Records r = {{"a", 1}};
  ASSERT_TRUE((*f)->Write(Encode(r), r.size(), 10).ok());  // generation 1, in meta 1
  f->reset();
  std::string image = ReadBytes(Path("s.snap"), 0, std::filesystem::file_size(Path("s.snap")));
  char* meta = image.data() + sf::kMetaPage;
  for (uint64_t half_size : {uint64_t{1} << 63, ~uint64_t{0} - sf::kDataStart + 1}) {
    for (int i = 0; i < 8; ++i) meta[sf::kHalfSizeOffset + i] = static_cast<char>(half_size >> (8 * i));
    const uint32_t crc = static_cast<uint32_t>(
        crc32(0, reinterpret_cast<const Bytef*>(meta), static_cast<uInt>(sf::kMetaCrcOffset)));
    for (int i = 0; i < 4; ++i) meta[sf::kMetaCrcOffset + i] = static_cast<char>(crc >> (8 * i));
    std::vector<SnapshotSlotCheck> checks = SnapshotFile::CheckImage(image);
    ASSERT_EQ(checks.size(), 2u);
    EXPECT_EQ(checks[1].status.code(), absl::StatusCode::kDataLoss) << half_size;
    EXPECT_NE(std::string(checks[1].status.message()).find("lies outside"), std::string::npos)
        << checks[1].status;
    EXPECT_FALSE(SnapshotFile::ReadNewestImage(image, "s.snap", [](std::string_view, int64_t) {})
                     .ok());
  }
}

TEST_F(Snapshot, MsyncFailureFailsThatSnapshotAndKeepsThePreviousOne) {
  FailingMsync sys("snapshot data");
  sys.armed_ = false;
  auto f = SnapshotFile::OpenForWrite(Path("s.snap"), 100, &sys);
  ASSERT_TRUE((*f)->Write(Encode({{"k", 1}}), 1, 100).ok());
  sys.armed_ = true;
  auto failed = (*f)->Write(Encode({{"k", 2}}), 1, 100);
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kInternal);
  EXPECT_NE(std::string(failed.status().message()).find("msync(snapshot data)"), std::string::npos)
      << failed.status();
  EXPECT_EQ((*f)->generation(), 1u);
  auto back = ReadBack(Path("s.snap"));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->first.generation, 1u);
  EXPECT_EQ(back->second, (Records{{"k", 1}}));
  // The next snapshot is written whole and becomes generation 2.
  auto next = (*f)->Write(Encode({{"k", 3}}), 1, 100);
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->generation, 2u);
}

TEST_F(Snapshot, SnapshotOfTableRoundTripsEveryCounter) {
  auto t = MustCreate(5000);
  for (int i = 0; i < 4000; ++i) ASSERT_TRUE(t->Increment(absl::StrCat("c", i), i - 2000).ok());
  std::string buf;
  uint64_t n = 0;
  t->SnapshotForEach([&](std::string_view k, int64_t v) {
    AppendSnapshotRecord(&buf, k, v);
    ++n;
  });
  auto f = SnapshotFile::OpenForWrite(Path("s.snap"), t->capacity());
  ASSERT_TRUE((*f)->Write(buf, n, t->capacity()).ok());
  auto back = ReadBack(Path("s.snap"));
  ASSERT_TRUE(back.ok());
  ASSERT_EQ(back->second.size(), 4000u);
  for (int i = 0; i < 4000; ++i) EXPECT_EQ(back->second[absl::StrCat("c", i)], i - 2000);
}

}  // namespace
}  // namespace countersd
