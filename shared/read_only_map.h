// A read-only look at a whole data file (the map, the snapshot file) that
// never faults on a hole, for the offline readers: CounterTable::OpenReadOnly
// (start-up's first look at counters.map, `counterctl inspect`) and
// SnapshotFile::Check / ReadNewest (start-up's restore, inspect).
//
// Why: a file of an older countersd may be sparse. On tmpfs (shmem) a read
// fault on a hole of a MAP_SHARED mapping must allocate a page, so on a full
// tmpfs it takes SIGBUS (ext4 and the other block file systems map the zero
// page or read zeros into the page cache, which needs memory, not disk).
// read(2) of a hole allocates nothing anywhere: it copies zeros.
//
// How it works:
//  1. A file with every block allocated (st_blocks * 512 >= st_size) is
//     mapped PROT_READ, MAP_SHARED: the fast path, no copy. On tmpfs, the
//     one file system where a hole can fault, st_blocks counts exactly the
//     pages the file holds (no metadata blocks), so this test is exact
//     there; elsewhere a hole it misses is read without allocation anyway.
//  2. A sparse file is copied into private memory of the same size (an
//     anonymous MAP_PRIVATE | MAP_NORESERVE mapping, so the callers work on
//     a mapping as before): read with Sys::Pread in 1 MiB chunks through a
//     buffer, and only the pages that are not all zero are copied in. The
//     rest, holes above all, stay untouched anonymous pages, which read as
//     the shared zero page: the copy costs the process the file's data, not
//     its size, and MAP_NORESERVE commits nothing for them.
//  3. The copy is then made PROT_READ, like the shared mapping: a stray
//     store is a crash, not a silent change to a copy.
// Either way the caller releases it with sys->Munmap(addr, st.st_size).
//
// A copy is a snapshot of the file as read; both callers hold the data
// directory's flock or read a file offline, so nothing writes it meanwhile.
#ifndef COUNTERSD_SHARED_READ_ONLY_MAP_H_
#define COUNTERSD_SHARED_READ_ONLY_MAP_H_

#include <sys/stat.h>

#include <string_view>

#include "absl/status/statusor.h"
#include "shared/sys.h"

namespace countersd {

// Maps all st.st_size bytes of the open file `fd` (`st` its fstat) for
// reading, as above. REQUIRES: st.st_size > 0. Errors name the failed call
// and `what` (the file's path); OUT_OF_RANGE if the file shrank while read.
absl::StatusOr<char*> MapForReading(Sys* sys, int fd, const struct stat& st, std::string_view what);

}  // namespace countersd

#endif  // COUNTERSD_SHARED_READ_ONLY_MAP_H_
