// The served copy of the TLS files (tls_staging.h has how it works).
#include "server/tls_staging.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "shared/log.h"
#include "shared/sys.h"

namespace countersd {
namespace {

constexpr char kKeyName[] = "tls.key";
constexpr char kCertName[] = "tls.crt";
constexpr char kCaName[] = "ca.crt";
constexpr char kCurrent[] = "current";

std::string GenName(uint64_t n) { return absl::StrCat("gen-", n); }

absl::Status WriteFile(const std::string& path, const std::string& data, mode_t mode,
                       time_t mtime) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
  if (fd < 0) return ErrnoToStatus(errno, absl::StrCat("open(", path, ")"));
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      close(fd);
      return ErrnoToStatus(err, absl::StrCat("write(", path, ")"));
    }
    done += static_cast<size_t>(n);
  }
  timespec times[2] = {{mtime, 0}, {mtime, 0}};
  int rc = futimens(fd, times);
  int err = errno;
  close(fd);
  if (rc != 0) return ErrnoToStatus(err, absl::StrCat("futimens(", path, ")"));
  return absl::OkStatus();
}

// A file's contents, or "" if it cannot be read (the check then says why).
std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

absl::StatusOr<TlsStaging> TlsStaging::Create(const std::string& data_dir, TlsFiles files,
                                              TlsMaterial initial) {
  std::string dir = absl::StrCat(data_dir, "/tls");
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot empty ", dir, ": ", ec.message()));
  if (mkdir(dir.c_str(), 0700) != 0) return ErrnoToStatus(errno, absl::StrCat("mkdir(", dir, ")"));
  TlsStaging staging(std::move(dir), std::move(files), TlsMaterial{}, time(nullptr));
  if (absl::Status s = staging.Publish(initial); !s.ok()) return s;
  return staging;
}

void TlsStaging::RemoveLeftover(const std::string& data_dir) {
  std::error_code ec;
  std::filesystem::remove_all(absl::StrCat(data_dir, "/tls"), ec);
}

std::string TlsStaging::key_path() const {
  return absl::StrCat(dir_, "/", kCurrent, "/", kKeyName);
}
std::string TlsStaging::cert_path() const {
  return absl::StrCat(dir_, "/", kCurrent, "/", kCertName);
}
std::string TlsStaging::ca_path() const {
  if (files_.client_ca_file.empty()) return "";
  return absl::StrCat(dir_, "/", kCurrent, "/", kCaName);
}

absl::Status TlsStaging::Publish(const TlsMaterial& m) {
  const uint64_t n = generation_ + 1;
  const std::string gen = absl::StrCat(dir_, "/", GenName(n));
  const time_t mtime = mtime_base_ + static_cast<time_t>(n);
  std::error_code ec;
  std::filesystem::remove_all(gen, ec);  // left by a failed attempt
  if (mkdir(gen.c_str(), 0700) != 0) return ErrnoToStatus(errno, absl::StrCat("mkdir(", gen, ")"));
  if (absl::Status s = WriteFile(absl::StrCat(gen, "/", kKeyName), m.key_pem, 0600, mtime); !s.ok())
    return s;
  if (absl::Status s = WriteFile(absl::StrCat(gen, "/", kCertName), m.cert_pem, 0600, mtime);
      !s.ok())
    return s;
  if (!m.ca_pem.empty()) {
    if (absl::Status s = WriteFile(absl::StrCat(gen, "/", kCaName), m.ca_pem, 0600, mtime); !s.ok())
      return s;
  }
  const std::string link = absl::StrCat(dir_, "/", kCurrent);
  const std::string tmp = absl::StrCat(link, ".new");
  unlink(tmp.c_str());
  if (symlink(GenName(n).c_str(), tmp.c_str()) != 0) {
    return ErrnoToStatus(errno, absl::StrCat("symlink(", tmp, ")"));
  }
  if (rename(tmp.c_str(), link.c_str()) != 0) {
    return ErrnoToStatus(errno, absl::StrCat("rename(", tmp, ", ", link, ")"));
  }
  // Generation n-1 may still be being read by a provider that started
  // before the swap; n-2 was replaced a whole poll ago.
  if (n > 2) std::filesystem::remove_all(absl::StrCat(dir_, "/", GenName(n - 2)), ec);
  generation_ = n;
  served_ = m;
  return absl::OkStatus();
}

bool TlsStaging::Poll() {
  TlsMaterial now{.cert_pem = Slurp(files_.cert_file),
                  .key_pem = Slurp(files_.key_file),
                  .ca_pem = files_.client_ca_file.empty() ? "" : Slurp(files_.client_ca_file)};
  if (now == served_ || now == rejected_) return false;
  // Read again through the check, which names what cannot be read.
  absl::Status check = CheckTlsMaterial(files_, now);
  if (check.ok() && (now.cert_pem.empty() || now.key_pem.empty())) {
    check = absl::InvalidArgumentError("a TLS file is empty or unreadable");
  }
  if (!check.ok()) {
    // An unreadable file reads as empty here; the full read names why.
    if (absl::StatusOr<TlsMaterial> again = ReadTlsFiles(files_); !again.ok()) {
      check = again.status();
    }
    rejected_ = now;
    Log(LogLevel::kError,
        "TLS files changed but fail the check; still serving the last good certificate",
        {{"error", std::string(check.message())}, {"served_generation", generation_}});
    return false;
  }
  if (absl::Status s = Publish(now); !s.ok()) {
    Log(LogLevel::kError, "cannot publish the new TLS files; still serving the last good ones",
        {{"error", s.ToString()}, {"served_generation", generation_}});
    return false;
  }
  rejected_ = {};
  Log(LogLevel::kInfo, "TLS files reloaded", {{"generation", generation_},
                                              {"cert_file", files_.cert_file}});
  return true;
}

}  // namespace countersd
