// How it works: see read_only_map.h.
#include "shared/read_only_map.h"

#include <errno.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>

#include "absl/strings/str_cat.h"
#include "shared/abseil_string_view.h"

namespace countersd {
namespace {

// Zero runs of this size are not copied (correct for any page size: the
// copy starts all zero; on 4 KiB pages it leaves them untouched).
constexpr size_t kPage = 4096;
constexpr size_t kChunk = 256 * kPage;  // one Pread: 1 MiB

bool AllZero(const char* p, size_t n) {
  return std::all_of(p, p + n, [](char c) { return c == 0; });
}

}  // namespace

absl::StatusOr<char*> MapForReading(Sys* sys, int fd, const struct stat& st, std::string_view what) {
  const size_t size = static_cast<size_t>(st.st_size);
  if (uint64_t(st.st_blocks) * 512 >= uint64_t(st.st_size)) {  // 1. no hole: share the pages
    absl::StatusOr<void*> p = sys->Mmap(size, PROT_READ, MAP_SHARED, fd, what);
    if (!p.ok()) return p.status();
    return static_cast<char*>(*p);
  }
  // 2. Sparse: a private copy of its data.
  absl::StatusOr<void*> p =
      sys->Mmap(size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1,
                absl::StrCat(Sv(what), " (private copy of a sparse file)"));
  if (!p.ok()) return p.status();
  char* copy = static_cast<char*>(*p);
  auto chunk = std::make_unique<char[]>(kChunk);
  for (size_t off = 0; off < size; off += kChunk) {
    const size_t n = std::min(kChunk, size - off);
    if (absl::Status s = sys->Pread(fd, chunk.get(), n, static_cast<off_t>(off), what); !s.ok()) {
      (void)sys->Munmap(copy, size);
      return s;
    }
    for (size_t page = 0; page < n; page += kPage) {
      const size_t len = std::min(kPage, n - page);
      if (!AllZero(chunk.get() + page, len)) std::memcpy(copy + off + page, chunk.get() + page, len);
    }
  }
  // 3. Read-only, like the shared mapping. Private anonymous memory, not
  // the file: nothing a storage fault could break, so not through Sys.
  if (::mprotect(copy, size, PROT_READ) != 0) {
    const int err = errno;
    (void)sys->Munmap(copy, size);
    return ErrnoToStatus(err, absl::StrCat("mprotect(", Sv(what), ")"));
  }
  return copy;
}

}  // namespace countersd
