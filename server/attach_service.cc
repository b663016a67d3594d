#include "server/attach_service.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "server/transport_config.h"
#include "shared/data_dir.h"
#include "shared/log.h"
#include "shared/status_macros.h"
#include "shared/sys.h"

namespace countersd {
namespace {

constexpr absl::Duration kStripeCheckPeriod = absl::Milliseconds(50);
constexpr absl::Duration kSlotCheckPeriod = absl::Seconds(1);

absl::Status SetAccess(const std::string& path, mode_t mode, std::optional<gid_t> group) {
  if (group && chown(path.c_str(), static_cast<uid_t>(-1), *group) != 0) {
    return ErrnoToStatus(errno, absl::StrCat("chown(", path, ") to the --attach-group"));
  }
  if (chmod(path.c_str(), mode) != 0) return ErrnoToStatus(errno, absl::StrCat("chmod(", path, ")"));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<AttachService> AttachService::Start(CounterTable* table,
                                                   const std::string& data_dir,
                                                   const std::string& group_name,
                                                   StatsArea* stats) {
  ASSIGN_OR_RETURN(std::optional<gid_t> group, LookUpGroup("attach-group", group_name));
  // Step 1: who may attach is who may open these.
  if (group) RETURN_IF_ERROR(SetAccess(data_dir, 0750, group));
  RETURN_IF_ERROR(
      SetAccess(absl::StrCat(data_dir, "/", kMapFile), group ? 0660 : 0600, group));
  ASSIGN_OR_RETURN(UnixListener socket,
                   UnixListener::Create(absl::StrCat(data_dir, "/", kAttachSocket),
                                        group ? 0660 : 0600, group));
  AttachGrant grant = table->OpenForAttach();
  Log(LogLevel::kInfo, "local attach open",
      {{"socket", socket.path()}, {"attach_group", group_name.empty() ? "(none)" : group_name}});
  return AttachService(table, std::move(socket), grant, stats);
}

absl::Duration AttachService::Poll(absl::Time now) {
  for (;;) {  // step 2: every pending connection
    int c = accept4(socket_.fd(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (c < 0) break;  // EAGAIN: none left; anything else: the next turn retries
    absl::Status sent = SendAttachGrant(c, grant_);
    close(c);
    if (!sent.ok()) {
      Log(LogLevel::kWarning, "an attaching process got no grant",
          {{"error", std::string(sent.message())}});
      continue;
    }
    // It claims its slot after the grant: watch from now on, not from
    // the next slot check, which may be a second away.
    watch_until_ = now + kSlotCheckPeriod;
    next_stripe_check_ = std::min(next_stripe_check_, now + kStripeCheckPeriod);
  }
  if (now >= watch_until_ && !table_->AnyAttached()) return absl::InfiniteDuration();
  if (now >= next_slot_check_) {
    Recover(/*all_slots=*/true);
    next_slot_check_ = now + kSlotCheckPeriod;
    next_stripe_check_ = now + kStripeCheckPeriod;
  } else if (now >= next_stripe_check_) {
    Recover(/*all_slots=*/false);
    next_stripe_check_ = now + kStripeCheckPeriod;
  }
  return std::min(next_slot_check_, next_stripe_check_) - now;
}

void AttachService::Recover(bool all_slots) {
  for (const AttacherRecovery& r : table_->RecoverDeadAttachers(all_slots)) {
    stats_->RecordForceReleased(static_cast<uint64_t>(r.report.stripes_released));
    Log(r.report.stripes_released || r.report.inserts_rolled_back || r.report.batches_rolled_back
            ? LogLevel::kWarning
            : LogLevel::kInfo,
        "attached process died",
        {{"attach_slot", r.slot},
         {"pid", r.pid},
         {"stripes_released", r.report.stripes_released},
         {"inserts_rolled_back", r.report.inserts_rolled_back},
         {"batches_rolled_back", r.report.batches_rolled_back},
         {"journals_freed", r.report.journals_freed}});
  }
}

absl::Status AttachService::Stop() {
  socket_.Close();  // no grant from now on
  absl::Status fenced = table_->CloseToAttachers();
  Recover(/*all_slots=*/true);
  return fenced;
}

void AttachService::RemoveSocket(const std::string& data_dir) {
  const std::string path = absl::StrCat(data_dir, "/", kAttachSocket);
  struct stat st;
  if (lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) unlink(path.c_str());
}

}  // namespace countersd
