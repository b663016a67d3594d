// Fuzz target: the snapshot file's parsers (shared/snapshot_file.h), on a
// file image that is entirely untrusted: both meta pages and halves checked
// (CheckImage, what `counterctl inspect` and the start-up restore run) and
// the newest valid half read record by record (ReadNewestImage). Every
// record a valid half yields must be a key the rules allow and within the
// count its meta states.
//
// The input is the image itself, padded with zeros to the two meta pages,
// so that a seed can be a real (small) counters.snap.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "shared/key.h"
#include "shared/snapshot_file.h"
#include "shared/snapshot_format.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string image(reinterpret_cast<const char*>(data), size);
  if (image.size() < countersd::snapshot_format::kDataStart) {
    image.resize(countersd::snapshot_format::kDataStart, '\0');
  }
  for (const countersd::SnapshotSlotCheck& c : countersd::SnapshotFile::CheckImage(image)) {
    if (c.status.ok() && c.meta.bytes > image.size()) std::abort();
  }
  uint64_t records = 0, sessions = 0;
  auto meta = countersd::SnapshotFile::ReadNewestImage(
      image, "fuzz.snap",
      [&](std::string_view key, int64_t) {
        if (key.empty() || key.size() > countersd::kMaxKeyBytes) std::abort();
        ++records;
      },
      [&](const countersd::SessionRecord& s) {
        // The rules of snapshot_format.h, which a restore relies on.
        size_t values = 0;
        if (s.id.size() != countersd::kSessionIdBytes ||
            s.entries.size() > countersd::kSessionWindow) {
          std::abort();
        }
        for (const countersd::SessionRecord::Entry& e : s.entries) {
          if (e.values.empty() || e.sequence > s.highest ||
              s.highest - e.sequence >= countersd::kSessionWindow) {
            std::abort();
          }
          values += e.values.size();
        }
        if (values > countersd::kSessionResponseValues) std::abort();
        ++sessions;
      });
  if (meta.ok() && (records != meta->counters || sessions != meta->sessions)) std::abort();
  if (meta.ok() && meta->wal_marks.region_lsn.size() > countersd::snapshot_format::kMaxMarkRegions) {
    std::abort();
  }
  return 0;
}
