// The supervisor's side of local attach (shared/table_attach.cc): it hands
// attaching processes the live table's grant over <data-dir>/attach.sock
// (shared/attach_grant.h), and finds the attachers that died.
//
// How it works, from the supervisor's loop (supervisor.cc, steps 2c and 9b):
//  1. Start, once the table is open: sets who may attach (the map file and
//     the socket 0600, or 0660 with --attach-group's group, which also
//     gets the data directory, 0750), makes the socket (a stale one is
//     replaced: the data directory's lock is held), then opens the table
//     to attached writers under a new incarnation (OpenForAttach).
//  2. Poll, every turn: accepts each pending connection and sends it the
//     grant, never blocking (a client that does not read loses its grant,
//     nobody else waits). Then, while any attach slot is claimed: every
//     50ms the attachers that hold a stripe, every second every claimed
//     slot, are checked for death (their slot byte's OFD lock); a dead
//     one's half-done work is rolled back, its stripes released and its
//     slot freed, each logged. So a dead attacher that others wait for is
//     found within 100ms, any other within a second.
//  3. Stop, at shutdown after the handlers drained (while they drain,
//     step 2's checks go on): closes the socket, then refuses attached
//     writers and waits for those inside a critical section
//     (CloseToAttachers), then repairs the dead ones. The clean-shutdown
//     mark follows only if that succeeded.
// gRPC-free.
#ifndef COUNTERSD_SERVER_ATTACH_SERVICE_H_
#define COUNTERSD_SERVER_ATTACH_SERVICE_H_

#include <sys/types.h>

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/unix_listener.h"
#include "shared/attach_grant.h"
#include "shared/counter_table.h"
#include "shared/stats_area.h"

namespace countersd {

class AttachService {
 public:
  static absl::StatusOr<AttachService> Start(CounterTable* table, const std::string& data_dir,
                                             const std::string& group, StatsArea* stats);
  AttachService(AttachService&&) = default;

  int fd() const { return socket_.fd(); }  // poll for POLLIN
  // Step 2. Returns how long until it needs the next turn.
  absl::Duration Poll(absl::Time now);
  // A child of the supervisor: it serves nothing of this.
  void CloseInChild() { socket_.CloseInChild(); }
  // Step 3, and then the attachers that died are repaired, so that the
  // final snapshot never waits for a stripe one held.
  absl::Status Stop();
  // With --attach=false: removes an earlier run's attach.sock, so that an
  // attaching process is told there is no attach socket, not that it is
  // refused. REQUIRES the data directory's lock.
  static void RemoveSocket(const std::string& data_dir);

 private:
  AttachService(CounterTable* table, UnixListener socket, AttachGrant grant, StatsArea* stats)
      : table_(table), socket_(std::move(socket)), grant_(grant), stats_(stats) {}
  void Recover(bool all_slots);

  CounterTable* table_;
  UnixListener socket_;
  AttachGrant grant_;  // its staging_fd is the table's
  StatsArea* stats_;
  absl::Time next_stripe_check_ = absl::InfinitePast();
  absl::Time next_slot_check_ = absl::InfinitePast();
  absl::Time watch_until_ = absl::InfinitePast();  // a grant's slot may not be claimed yet
};

}  // namespace countersd

#endif  // COUNTERSD_SERVER_ATTACH_SERVICE_H_
