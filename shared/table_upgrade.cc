// How a map file of layout 2 is upgraded in place to layout 3
// ===========================================================
//
// Layout 3 is layout 2 with the attach slots appended after the slot array
// and the header's attach_incarnation in bytes that were zero (layout.h);
// nothing else moved, and the static fields are the same. So the writable
// Open of a layout-2 map (a file the start already chose to trust:
// table_selection.cc sets an untrusted one aside first, unmodified, and a
// read-only open reads layout 2 as it is) makes it a layout-3 map:
//  1. Read the header. Only a layout-2 map whose header and trust
//     checksums hold, and whose size is its layout-2 geometry's (or
//     already the layout-3 one: an upgrade cut short after step 2), is
//     upgraded; anything else is left for validation to refuse.
//  2. Grow the file by the attach slots' section, allocate it (zeros: free
//     slots, AttachSlot's kAttachFree), fsync.
//  3. Rewrite the header's first sector: layout_version 3, the new
//     file_size, both checksums recomputed (trust_crc is seeded with
//     header_crc); pwrite, fsync. The fields that change lie in that one
//     512-byte sector (layout.h), so a power loss leaves the old header or
//     the new one, and the old one over the grown file is step 1's resume.
// Then Open goes on as for any layout-3 map.
#include <sys/stat.h>

#include "absl/strings/str_cat.h"
#include "shared/log.h"
#include "shared/status_macros.h"
#include "shared/table_internal.h"

namespace countersd::table_internal {

absl::Status UpgradeFromLayout2(Sys* sys, const std::string& path, int fd) {
  layout::TableHeader h;
  struct stat st;
  RETURN_IF_ERROR(sys->Fstat(fd, &st, path));
  if (static_cast<uint64_t>(st.st_size) < sizeof h) return absl::OkStatus();
  RETURN_IF_ERROR(sys->Pread(fd, &h, sizeof h, 0, path));  // step 1
  if (std::memcmp(h.magic, layout::kMagic, sizeof h.magic) != 0 ||
      h.layout_version != layout::kLayoutVersionBeforeAttach ||
      h.header_crc != layout::HeaderCrc(h) || h.trust_crc != layout::TrustCrc(h) ||
      h.capacity == 0 || h.capacity > kMaxCapacity) {
    return absl::OkStatus();
  }
  const Geometry g = ComputeGeometry(h.capacity);
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (h.file_size != g.attach_offset || (size != g.attach_offset && size != g.file_size)) {
    return absl::OkStatus();
  }
  RETURN_IF_ERROR(sys->Ftruncate(fd, static_cast<off_t>(g.file_size), path));  // step 2
  RETURN_IF_ERROR(sys->Fallocate(fd, 0, static_cast<off_t>(g.file_size), path));
  RETURN_IF_ERROR(sys->Fsync(fd, path));
  h.layout_version = layout::kLayoutVersion;  // step 3
  h.file_size = g.file_size;
  h.header_crc = layout::HeaderCrc(h);
  h.trust_crc = layout::TrustCrc(h);
  static_assert(offsetof(layout::TableHeader, pad2) <= 512);
  RETURN_IF_ERROR(sys->Pwrite(fd, &h, 512, 0, path));
  RETURN_IF_ERROR(sys->Fsync(fd, path));
  Log(LogLevel::kInfo, "map file upgraded in place",
      {{"path", path},
       {"from_layout", layout::kLayoutVersionBeforeAttach},
       {"to_layout", layout::kLayoutVersion},
       {"added_bytes", g.file_size - g.attach_offset}});
  return absl::OkStatus();
}

}  // namespace countersd::table_internal
