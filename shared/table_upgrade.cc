// How a map file of layout 2 or 3 is upgraded in place to layout 4
// ==============================================================
//
// Each older layout is this one cut short: layout 2 ends before the attach
// slots, layout 3 before the sessions (layout.h); nothing before them
// moved, the static fields are the same, and what the later layouts added
// in bytes that were zero (the header's attach_incarnation, the journal's
// session undo) reads as "none" there. So the writable Open of an older
// map (a file the start already chose to trust: table_selection.cc sets an
// untrusted one aside first, unmodified, and a read-only open reads an
// older layout as it is) makes it a layout-4 map:
//  1. Read the header. Only a layout-2 or -3 map whose header and trust
//     checksums hold, and whose size is its own layout's end (or already
//     the layout-4 size: an upgrade cut short after step 2), is upgraded;
//     anything else is left for validation to refuse.
//  2. Grow the file to layout 4's size, allocate the new sections (zeros:
//     free attach slots, AttachSlot's kAttachFree; free sessions,
//     SessionSlot's kSessionFree), fsync.
//  3. Rewrite the header's first sector: layout_version 4, the new
//     file_size, both checksums recomputed (trust_crc is seeded with
//     header_crc); pwrite, fsync. The fields that change lie in that one
//     512-byte sector (layout.h), so a power loss leaves the old header or
//     the new one, and the old one over the grown file is step 1's resume.
// Then Open goes on as for any layout-4 map.
#include <sys/stat.h>

#include "absl/strings/str_cat.h"
#include "shared/log.h"
#include "shared/status_macros.h"
#include "shared/table_internal.h"

namespace countersd::table_internal {

absl::Status UpgradeInPlace(Sys* sys, const std::string& path, int fd) {
  layout::TableHeader h;
  struct stat st;
  RETURN_IF_ERROR(sys->Fstat(fd, &st, path));
  if (static_cast<uint64_t>(st.st_size) < sizeof h) return absl::OkStatus();
  RETURN_IF_ERROR(sys->Pread(fd, &h, sizeof h, 0, path));  // step 1
  if (std::memcmp(h.magic, layout::kMagic, sizeof h.magic) != 0 ||
      (h.layout_version != layout::kLayoutVersionBeforeAttach &&
       h.layout_version != layout::kLayoutVersionBeforeSessions) ||
      h.header_crc != layout::HeaderCrc(h) || h.trust_crc != layout::TrustCrc(h) ||
      h.capacity == 0 || h.capacity > kMaxCapacity) {
    return absl::OkStatus();
  }
  const Geometry g = ComputeGeometry(h.capacity);
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  const uint64_t old_end = LayoutEnd(g, h.layout_version);
  if (h.file_size != old_end || (size != old_end && size != g.file_size)) {
    return absl::OkStatus();
  }
  RETURN_IF_ERROR(sys->Ftruncate(fd, static_cast<off_t>(g.file_size), path));  // step 2
  RETURN_IF_ERROR(sys->Fallocate(fd, 0, static_cast<off_t>(g.file_size), path));
  RETURN_IF_ERROR(sys->Fsync(fd, path));
  const uint32_t from = h.layout_version;
  h.layout_version = layout::kLayoutVersion;  // step 3
  h.file_size = g.file_size;
  h.header_crc = layout::HeaderCrc(h);
  h.trust_crc = layout::TrustCrc(h);
  static_assert(offsetof(layout::TableHeader, pad2) <= 512);
  RETURN_IF_ERROR(sys->Pwrite(fd, &h, 512, 0, path));
  RETURN_IF_ERROR(sys->Fsync(fd, path));
  Log(LogLevel::kInfo, "map file upgraded in place",
      {{"path", path},
       {"from_layout", from},
       {"to_layout", layout::kLayoutVersion},
       {"added_bytes", g.file_size - old_end}});
  return absl::OkStatus();
}

}  // namespace countersd::table_internal
