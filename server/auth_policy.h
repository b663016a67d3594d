// Who may do what: the --auth-file's principals, their roles and key
// prefixes, and the checks a call goes through. gRPC-free (call_identity.h
// turns a gRPC call into a CallIdentity), so it is unit-tested without a
// server and the supervisor may load it before the fork.
//
// The file: one principal a line, '#' starts a comment, fields separated by
// spaces or tabs:
//   # principal                        role   key prefixes (none: every key)
//   token:sha256:<64 hex digits>       write  jobs/ quota/
//   cert:spiffe://example.org/billing  read
//   cert:CN=alice                      admin
//   uid:1000                           write  local/
// A token is stored only as the SHA-256 of the bearer token's bytes (what
// `counterctl token new` prints). `cert:NAME` matches a verified client
// certificate with a URI or DNS SAN equal to NAME; `cert:CN=NAME` one whose
// subject CN is NAME. `uid:N` matches a unix-socket peer with uid N.
//
// Roles (RequiredRole below is the one table):
//   read   Get, BatchGet, List, GetStats
//   write  read's, plus Increment, IncrementBatch, Set, CompareAndSet, Delete
//   admin  everything, including Snapshot
// Health and reflection are not CounterService methods: never checked.
//
// Which principal a call is (AuthPolicy::Lookup): a bearer token, when the
// call sends one, decides alone (an unknown token is UNAUTHENTICATED even if
// the certificate is known: a wrong credential is never replaced by
// another); else the certificate (its SANs, then its CN, each against the
// file's cert: lines in file order); else the unix peer uid.
#ifndef COUNTERSD_SERVER_AUTH_POLICY_H_
#define COUNTERSD_SERVER_AUTH_POLICY_H_

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "shared/log.h"

namespace countersd {

enum class AuthRole { kRead = 0, kWrite = 1, kAdmin = 2 };
const char* AuthRoleName(AuthRole role);

// The CounterService methods a role gates.
enum class RpcMethod {
  kIncrement,
  kIncrementBatch,
  kGet,
  kBatchGet,
  kList,
  kSet,
  kCompareAndSet,
  kDelete,
  kSnapshot,
  kGetStats,
  kIncrementStream,  // each message of the stream counts as one call
};
inline constexpr RpcMethod kAllRpcMethods[] = {
    RpcMethod::kIncrement,     RpcMethod::kIncrementBatch, RpcMethod::kGet,
    RpcMethod::kBatchGet,      RpcMethod::kList,           RpcMethod::kSet,
    RpcMethod::kCompareAndSet, RpcMethod::kDelete,         RpcMethod::kSnapshot,
    RpcMethod::kGetStats,      RpcMethod::kIncrementStream};
const char* RpcMethodName(RpcMethod method);  // "Increment"
// The least role that may call `method`.
AuthRole RequiredRole(RpcMethod method);

// What a call presents. Filled per call by call_identity.cc.
struct CallIdentity {
  std::optional<std::string> bearer_token;  // secret: never logged
  // An `authorization` metadata value that is not "Bearer <token>".
  bool malformed_authorization = false;
  std::vector<std::string> cert_sans;  // URI and DNS SANs of a verified client cert
  std::optional<std::string> cert_cn;  // its subject CN
  std::optional<uid_t> peer_uid;       // unix-socket peer
};

struct Principal {
  enum class Kind { kToken, kCert, kUid };
  Kind kind = Kind::kToken;
  // How logs and messages name it: "token:sha256:9f86d081..." (the hash's
  // first 8 hex digits, which say which line without giving the hash
  // away), "cert:CN=alice", "uid:1000".
  std::string name;
  std::array<unsigned char, 32> token_sha256{};  // kToken
  std::string cert_subject;                      // kCert: a SAN, or "CN=..."
  uid_t uid = 0;                                 // kUid
  AuthRole role = AuthRole::kRead;
  // Sorted, none a prefix of another; empty: every key.
  std::vector<std::string> prefixes;
  int line = 0;  // in the auth file

  bool MayCall(RpcMethod method) const { return role >= RequiredRole(method); }
  bool InScope(std::string_view key) const;
};

class AuthPolicy {
 public:
  // Parses the auth file's text. INVALID_ARGUMENT "<source>:<line>: what is
  // wrong" for the first bad line; also for a file with no principal.
  static absl::StatusOr<std::shared_ptr<const AuthPolicy>> Parse(std::string_view text,
                                                                 std::string_view source);
  // Reads and parses the file at `path` (errors name the path).
  static absl::StatusOr<std::shared_ptr<const AuthPolicy>> LoadFile(const std::string& path);

  // The principal `id` is, or null (see the top of this file). Tokens are
  // found by their SHA-256 and compared in constant time (auth_policy.cc).
  const Principal* Lookup(const CallIdentity& id) const;

  const std::vector<Principal>& principals() const { return principals_; }
  // Whether any principal is a certificate name or a unix uid: a call's
  // identity need carry only what the policy can match (call_identity.h).
  bool has_cert_principals() const { return has_cert_principals_; }
  bool has_uid_principals() const { return has_uid_principals_; }

 private:
  std::vector<Principal> principals_;
  bool has_cert_principals_ = false;
  bool has_uid_principals_ = false;
  // Token principals by the first 8 bytes of their hash.
  std::unordered_map<uint64_t, std::vector<size_t>> tokens_;
};

// A reload (SIGHUP): LoadFile, logged either way: success at
// `success_level` ("auth file reloaded", the principals), failure at error
// level naming the line, saying that the policy in force is kept.
absl::StatusOr<std::shared_ptr<const AuthPolicy>> ReloadAuthPolicy(const std::string& path,
                                                                   LogLevel success_level);

// ---- The checks of one call. ----

// UNAUTHENTICATED for a null principal (the message says what `id` sent:
// no credentials, an unknown token, an unknown certificate or uid);
// PERMISSION_DENIED naming the method and the role when `p` may not call
// `method`; else OK.
absl::Status AuthorizeMethod(const Principal* p, const CallIdentity& id, RpcMethod method);
// PERMISSION_DENIED naming `key` (and `what`, e.g. "keys[3]") when it is not
// under p's prefixes.
absl::Status AuthorizeKey(const Principal& p, std::string_view key, std::string_view what);

// The key ranges a List of `prefix` by `p` covers: the prefixes whose keys
// are both under `prefix` and in p's scope, sorted, disjoint (none a prefix
// of another), so that listing them one after another in order lists the
// in-scope keys sorted. {prefix} when `prefix` is inside the scope (or p has
// every key); several when `prefix` is a proper prefix of several of p's
// prefixes (prefix "" with scope jobs/ quota/: {"jobs/", "quota/"}).
// PERMISSION_DENIED when no key under `prefix` is in scope.
absl::StatusOr<std::vector<std::string>> ListRanges(const Principal& p, std::string_view prefix);

}  // namespace countersd

#endif  // COUNTERSD_SERVER_AUTH_POLICY_H_
