// The copy of the TLS files that the handlers serve: only ever a pair that
// passed tls_file_check.h, so that a bad rotation keeps the last good one.
//
// Why a copy. Each handler's gRPC server reloads its certificate with
// gRPC's FileWatcherCertificateProvider (tls_server_credentials.h), which
// re-reads its files every interval and serves whatever it read: in 1.51 a
// file that is unreadable clears the certificate, and one that does not
// parse (or a key that does not match) makes every new handshake fail.
// So the provider does not watch the operator's files; it watches this
// copy, which the supervisor updates only with files that passed the check.
//
// How it works, step by step (the supervisor's thread; no gRPC):
//  1. Create: <data-dir>/tls/ (0700) is emptied, generation 1 is written
//     from the files checked at start, and the symlink `current` points at
//     it. The handlers' providers read current/tls.key, current/tls.crt and
//     current/ca.crt.
//  2. Poll, every --tls-reload-interval: read the operator's files. Same
//     contents as last time: nothing. Changed and the check passes: write
//     generation n+1 (gen-<n+1>/, key 0600), then rename a new symlink over
//     `current` (atomic), log it, and remove generation n-1. Changed and the
//     check fails: log the error (once per distinct bad contents) and keep
//     serving generation n. A half-written rotation (key new, certificate
//     old) fails the check and is taken at the next poll once complete.
//  3. The provider reads the key and the certificate as two files and
//     re-reads both when either's mtime changed while it read (its own
//     consistency check, at one-second resolution). Each generation's files
//     get mtime = start time + n seconds, so a swap between its two reads
//     always changes an mtime it compares and it reads again: it never pairs
//     one generation's key with another's certificate.
#ifndef COUNTERSD_SERVER_TLS_STAGING_H_
#define COUNTERSD_SERVER_TLS_STAGING_H_

#include <cstdint>
#include <ctime>
#include <string>

#include "absl/status/statusor.h"
#include "server/tls_file_check.h"

namespace countersd {

class TlsStaging {
 public:
  // Step 1. REQUIRES: the data directory's lock is held; `initial` passed
  // CheckTlsMaterial for `files`. Errors name the failed call.
  static absl::StatusOr<TlsStaging> Create(const std::string& data_dir, TlsFiles files,
                                           TlsMaterial initial);

  // With TLS off: removes a copy an earlier run with TLS left in
  // `data_dir`, so that no private key lingers there.
  static void RemoveLeftover(const std::string& data_dir);

  // The paths the handlers' certificate providers watch (through `current`).
  std::string key_path() const;
  std::string cert_path() const;
  std::string ca_path() const;  // empty without --tls-client-ca-file

  // Step 2. Returns true if a new generation was published.
  bool Poll();
  uint64_t generation() const { return generation_; }

 private:
  TlsStaging(std::string dir, TlsFiles files, TlsMaterial served, time_t base)
      : dir_(std::move(dir)), files_(std::move(files)), served_(std::move(served)),
        mtime_base_(base) {}
  absl::Status Publish(const TlsMaterial& m);

  std::string dir_;  // <data-dir>/tls
  TlsFiles files_;
  TlsMaterial served_;    // what `current` holds
  TlsMaterial rejected_;  // the last contents that failed the check (logged once)
  time_t mtime_base_;
  uint64_t generation_ = 0;
};

}  // namespace countersd

#endif  // COUNTERSD_SERVER_TLS_STAGING_H_
