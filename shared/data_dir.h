// The names of the files in a countersd data directory: the one home of
// each, for the server, counterctl and the tests.
//
//   counters.map                   the live table (layout.h), mapped MAP_SHARED
//   counters.snap                  the double-buffered snapshots (snapshot_file.h)
//   LOCK                           flock'd by the daemon that owns the directory
//   attach.sock                    where an attaching process gets the live table (attach_grant.h)
//   counters.map.restoring         a restore in progress (never served)
//   counters.snap.new              a snapshot file being made (never read)
//   <file>.corrupt-<UTC time>      a file that failed validation, kept aside
//   counters.map.untrusted-<time>  a map left by an unclean stop on another boot
#ifndef COUNTERSD_SHARED_DATA_DIR_H_
#define COUNTERSD_SHARED_DATA_DIR_H_

namespace countersd {

inline constexpr char kMapFile[] = "counters.map";
inline constexpr char kSnapshotFile[] = "counters.snap";
inline constexpr char kLockFile[] = "LOCK";
inline constexpr char kAttachSocket[] = "attach.sock";
inline constexpr char kRestoringFile[] = "counters.map.restoring";
// <file><kNewFileSuffix>: a file being made, renamed over <file> once complete.
inline constexpr char kNewFileSuffix[] = ".new";
// Set-aside kinds: <file>.<kind>-<UTC time>.
inline constexpr char kCorruptKind[] = "corrupt";
inline constexpr char kUntrustedKind[] = "untrusted";

}  // namespace countersd

#endif  // COUNTERSD_SHARED_DATA_DIR_H_
