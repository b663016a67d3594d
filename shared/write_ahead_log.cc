#include "shared/write_ahead_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <zlib.h>

#include <algorithm>
#include <filesystem>
#include <system_error>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "shared/coding.h"
#include "shared/key.h"
#include "shared/limits.h"
#include "shared/status_macros.h"

namespace countersd {
namespace {

constexpr size_t kFrame = 8;  // length + crc
// The largest payload a record can have: a full batch of the longest keys
// and a session entry with every value.
constexpr uint64_t kMaxPayload = 8 + 2 + kMaxBatchOps * (1 + 2 + kMaxKeyBytes + 8) + 1 + 16 + 8 +
                                 8 + 1 + 2 + kSessionResponseValues * 8;

uint32_t Crc(std::string_view bytes) {
  return static_cast<uint32_t>(
      crc32(0, reinterpret_cast<const Bytef*>(bytes.data()), static_cast<uInt>(bytes.size())));
}

void Put16(std::string* out, uint16_t v) {
  char b[2];
  EncodeFixed16(b, v);
  out->append(b, 2);
}
void Put32(std::string* out, uint32_t v) {
  char b[4];
  EncodeFixed32(b, v);
  out->append(b, 4);
}
void Put64(std::string* out, uint64_t v) {
  char b[8];
  EncodeFixed64(b, v);
  out->append(b, 8);
}

// Reads fields off an untrusted payload; any overrun makes ok() false.
class Reader {
 public:
  explicit Reader(std::string_view b) : b_(b) {}
  bool ok() const { return ok_; }
  bool done() const { return ok_ && b_.empty(); }
  std::string_view Bytes(size_t n) {
    if (!ok_ || b_.size() < n) {
      ok_ = false;
      return {};
    }
    std::string_view v = b_.substr(0, n);
    b_.remove_prefix(n);
    return v;
  }
  uint8_t U8() {
    std::string_view v = Bytes(1);
    return ok_ ? static_cast<uint8_t>(v[0]) : 0;
  }
  uint16_t U16() {
    std::string_view v = Bytes(2);
    return ok_ ? DecodeFixed16(v.data()) : 0;
  }
  uint64_t U64() {
    std::string_view v = Bytes(8);
    return ok_ ? DecodeFixed64(v.data()) : 0;
  }
  void Fail() { ok_ = false; }

 private:
  std::string_view b_;
  bool ok_ = true;
};

std::optional<WalRecord> ParsePayload(std::string_view payload) {
  Reader r(payload);
  WalRecord rec;
  rec.lsn = r.U64();
  const uint16_t ops = r.U16();
  if (ops > kMaxBatchOps) return std::nullopt;
  rec.ops.resize(ops);
  for (WalOp& op : rec.ops) {
    const uint8_t kind = r.U8();
    if (kind < WalOp::kAdd || kind > WalOp::kDelete) return std::nullopt;
    op.kind = static_cast<WalOp::Kind>(kind);
    const uint16_t len = r.U16();
    if (len == 0 || len > kMaxKeyBytes) return std::nullopt;
    op.key = std::string(r.Bytes(len));
    if (op.kind != WalOp::kDelete) op.value = static_cast<int64_t>(r.U64());
  }
  if (r.U8() != 0) {
    rec.session_id = std::string(r.Bytes(kSessionIdBytes));
    rec.session_entry.sequence = r.U64();
    rec.session_entry.fingerprint = r.U64();
    rec.session_entry.flag = r.U8() != 0;
    const uint16_t n = r.U16();
    if (n == 0 || n > kSessionResponseValues) return std::nullopt;
    rec.session_entry.values.resize(n);
    for (int64_t& v : rec.session_entry.values) v = static_cast<int64_t>(r.U64());
  }
  if (!r.done()) return std::nullopt;
  return rec;
}

}  // namespace

void AppendWalRecord(std::string* out, const WalRecord& rec) {
  std::string payload;
  Put64(&payload, rec.lsn);
  Put16(&payload, static_cast<uint16_t>(rec.ops.size()));
  for (const WalOp& op : rec.ops) {
    payload.push_back(static_cast<char>(op.kind));
    Put16(&payload, static_cast<uint16_t>(op.key.size()));
    payload.append(op.key);
    if (op.kind != WalOp::kDelete) Put64(&payload, static_cast<uint64_t>(op.value));
  }
  payload.push_back(rec.session_id.has_value() ? 1 : 0);
  if (rec.session_id.has_value()) {
    payload.append(*rec.session_id);
    Put64(&payload, rec.session_entry.sequence);
    Put64(&payload, rec.session_entry.fingerprint);
    payload.push_back(rec.session_entry.flag ? 1 : 0);
    Put16(&payload, static_cast<uint16_t>(rec.session_entry.values.size()));
    for (int64_t v : rec.session_entry.values) Put64(&payload, static_cast<uint64_t>(v));
  }
  Put32(out, static_cast<uint32_t>(payload.size()));
  Put32(out, Crc(payload));
  out->append(payload);
}

std::vector<WalRecord> ParseWalSegment(std::string_view bytes, size_t* valid_bytes) {
  std::vector<WalRecord> records;
  size_t pos = 0;
  while (bytes.size() - pos >= kFrame) {
    const uint32_t len = DecodeFixed32(bytes.data() + pos);
    const uint32_t crc = DecodeFixed32(bytes.data() + pos + 4);
    if (len > kMaxPayload || bytes.size() - pos - kFrame < len) break;
    const std::string_view payload = bytes.substr(pos + kFrame, len);
    if (Crc(payload) != crc) break;
    std::optional<WalRecord> rec = ParsePayload(payload);
    if (!rec.has_value()) break;
    records.push_back(*std::move(rec));
    pos += kFrame + len;
  }
  if (valid_bytes != nullptr) *valid_bytes = pos;
  return records;
}

std::string WalSegmentName(int handler, uint64_t number) {
  return absl::StrCat("durable.", handler, ".", number, ".wal");
}

bool ParseWalSegmentName(std::string_view name, int* handler, uint64_t* number) {
  std::vector<absl::string_view> parts =
      absl::StrSplit(absl::string_view(name.data(), name.size()), '.');
  return parts.size() == 4 && parts[0] == "durable" && parts[3] == "wal" &&
         absl::SimpleAtoi(parts[1], handler) && absl::SimpleAtoi(parts[2], number);
}

std::vector<std::string> WalSegments(const std::string& data_dir) {
  std::vector<std::string> paths;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(data_dir, ec)) {
    int h;
    uint64_t n;
    if (ParseWalSegmentName(e.path().filename().string(), &h, &n)) {
      paths.push_back(e.path().string());
    }
  }
  std::sort(paths.begin(), paths.end());
  return paths;
}

absl::StatusOr<std::vector<WalRecord>> ReadWal(const std::string& data_dir, Sys* sys) {
  std::vector<WalRecord> all;
  for (const std::string& path : WalSegments(data_dir)) {
    ASSIGN_OR_RETURN(int fd, OpenDataFile(sys, path, O_RDONLY, 0));
    struct stat st;
    absl::Status s = sys->Fstat(fd, &st, path);
    std::string bytes;
    if (s.ok()) {
      bytes.resize(static_cast<size_t>(st.st_size));
      if (!bytes.empty()) s = sys->Pread(fd, bytes.data(), bytes.size(), 0, path);
    }
    (void)sys->Close(fd);
    RETURN_IF_ERROR(s);
    std::vector<WalRecord> records = ParseWalSegment(bytes);
    std::move(records.begin(), records.end(), std::back_inserter(all));
  }
  std::sort(all.begin(), all.end(),
            [](const WalRecord& a, const WalRecord& b) { return a.lsn < b.lsn; });
  return all;
}

absl::StatusOr<std::unique_ptr<WalSegment>> WalSegment::Create(const std::string& dir,
                                                               const std::string& name, Sys* sys) {
  auto seg = std::unique_ptr<WalSegment>(new WalSegment());
  seg->sys_ = sys;
  seg->path_ = dir + "/" + name;
  ASSIGN_OR_RETURN(seg->fd_, OpenDataFile(sys, seg->path_, O_RDWR | O_CREAT | O_EXCL, 0600));
  RETURN_IF_ERROR(sys->FsyncDir(dir));  // its name, durable before any record in it
  return seg;
}

WalSegment::~WalSegment() {
  if (fd_ >= 0) (void)sys_->Close(fd_);
}

absl::Status WalSegment::Append(std::string_view bytes) {
  RETURN_IF_ERROR(sys_->Pwrite(fd_, bytes.data(), bytes.size(), static_cast<off_t>(size_), path_));
  size_ += bytes.size();
  return absl::OkStatus();
}

absl::Status WalSegment::Sync() { return sys_->Fsync(fd_, path_); }

}  // namespace countersd
