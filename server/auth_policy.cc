// The auth file and the checks of a call (the format and the rules are in
// auth_policy.h).
//
// How it works:
//  - Parse: line by line; a field that starts with '#' starts a comment to
//    the end of the line (so a '#' inside a SAN such as a URI fragment is
//    kept). The first field is the principal, the second its role, the
//    rest its key prefixes, each a valid key (shared/key.h), kept sorted
//    with those under another dropped (they add nothing). A principal given
//    twice is an error naming both lines: which of two roles was meant is
//    not ours to guess.
//  - Lookup: a bearer token is hashed (SHA-256), the token lines whose hash
//    starts with the same 8 bytes are found in a hash table, and each is
//    compared with the whole hash in constant time (CRYPTO_memcmp). The
//    token itself is never stored nor compared. What the time of a lookup
//    can tell is only about the hash of the token sent, which does not help
//    to find a token whose hash is in the file (that is a SHA-256 preimage);
//    and the cost of a call does not grow with the file (0.2 us per call
//    with 1 or 200 token lines, tests/bench/auth_bench.cc; comparing with
//    every line cost 4.6 us at 200). Certificates and uids are public names:
//    plain comparisons.
//  - ListRanges: the request's prefix P and the principal's prefixes S
//    (sorted, none a prefix of another). If some S is a prefix of P (or S
//    is every key), the whole of P is in scope: {P}. Else the in-scope keys
//    under P are those under each S that starts with P; those prefixes are
//    disjoint, and in sorted order their key ranges follow one another, so
//    the caller lists them one after the other (scoped_list.h). None: P
//    holds no key the principal may see, PERMISSION_DENIED.
#include "server/auth_policy.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <string.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "shared/abseil_string_view.h"
#include "shared/bearer_token.h"
#include "shared/key.h"

namespace countersd {
namespace {

constexpr std::string_view kTokenPrefix = "token:";
constexpr std::string_view kSha256Prefix = kTokenPrincipalPrefix;
constexpr std::string_view kCertPrefix = "cert:";
constexpr std::string_view kUidPrefix = "uid:";
// How many hex digits of a token's hash its log name keeps.
constexpr size_t kTokenNameHexDigits = 8;

bool StartsWith(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

std::vector<std::string_view> Fields(std::string_view line) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    if (i == line.size() || line[i] == '#') break;
    size_t j = i;
    while (j < line.size() && line[j] != ' ' && line[j] != '\t') ++j;
    out.push_back(line.substr(i, j - i));
    i = j;
  }
  return out;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string Hex(const unsigned char* p, size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * n);
  for (size_t i = 0; i < n; ++i) {
    out.push_back(kDigits[p[i] >> 4]);
    out.push_back(kDigits[p[i] & 15]);
  }
  return out;
}

// Fills p's identity from the principal field; the error says what is wrong.
absl::Status ParsePrincipal(std::string_view field, Principal* p) {
  if (StartsWith(field, kSha256Prefix)) {
    std::string_view hex = field.substr(kSha256Prefix.size());
    if (hex.size() != 64) {
      return absl::InvalidArgumentError(absl::StrCat(
          "token:sha256: needs 64 hex digits (the SHA-256 of the token, as `counterctl token "
          "new` prints it), got ",
          hex.size()));
    }
    for (size_t i = 0; i < 32; ++i) {
      int hi = HexValue(hex[2 * i]), lo = HexValue(hex[2 * i + 1]);
      if (hi < 0 || lo < 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            "token:sha256: holds a character that is not a hex digit at position ",
            kSha256Prefix.size() + 2 * i + (hi < 0 ? 0 : 1) + 1));
      }
      p->token_sha256[i] = static_cast<unsigned char>(hi * 16 + lo);
    }
    p->kind = Principal::Kind::kToken;
    p->name = absl::StrCat(Sv(kSha256Prefix), Hex(p->token_sha256.data(), 32).substr(0, kTokenNameHexDigits), "...");
    return absl::OkStatus();
  }
  if (StartsWith(field, kTokenPrefix)) {
    return absl::InvalidArgumentError(
        "a token is given as token:sha256:<64 hex digits> (only its SHA-256 is stored; "
        "`counterctl token new` prints the line)");
  }
  if (StartsWith(field, kCertPrefix)) {
    std::string_view subject = field.substr(kCertPrefix.size());
    if (subject.empty()) {
      return absl::InvalidArgumentError("cert: needs a SAN (cert:spiffe://...) or a CN (cert:CN=...)");
    }
    if (subject == "CN=") return absl::InvalidArgumentError("cert:CN= needs a name after CN=");
    p->kind = Principal::Kind::kCert;
    p->cert_subject = std::string(subject);
    p->name = std::string(field);
    return absl::OkStatus();
  }
  if (StartsWith(field, kUidPrefix)) {
    std::string_view digits = field.substr(kUidPrefix.size());
    uint32_t uid;
    if (digits.empty() || !std::all_of(digits.begin(), digits.end(), absl::ascii_isdigit) ||
        !absl::SimpleAtoi(Sv(digits), &uid) || uid == static_cast<uint32_t>(-1)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "uid: needs a numeric uid from 0 to 4294967294, got \"", Sv(digits), "\""));
    }
    p->kind = Principal::Kind::kUid;
    p->uid = uid;
    p->name = std::string(field);
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown principal \"", Sv(field), "\": expected token:sha256:<hex>, cert:<SAN or CN=name> "
      "or uid:<n>"));
}

absl::Status ParseRole(std::string_view field, AuthRole* role) {
  for (AuthRole r : {AuthRole::kRead, AuthRole::kWrite, AuthRole::kAdmin}) {
    if (field == AuthRoleName(r)) {
      *role = r;
      return absl::OkStatus();
    }
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown role \"", Sv(field), "\": expected read, write or admin"));
}

// Sorted, without the prefixes that another one covers.
std::vector<std::string> MinimalPrefixes(std::vector<std::string> prefixes) {
  std::sort(prefixes.begin(), prefixes.end());
  std::vector<std::string> out;
  for (std::string& s : prefixes) {
    // Sorted: a prefix of s, if kept, is the last one kept.
    if (!out.empty() && StartsWith(s, out.back())) continue;
    out.push_back(std::move(s));
  }
  return out;
}

// The identity part of a principal, for finding duplicates.
std::string IdentityKey(const Principal& p) {
  switch (p.kind) {
    case Principal::Kind::kToken:
      return absl::StrCat("t", absl::string_view(reinterpret_cast<const char*>(p.token_sha256.data()), 32));
    case Principal::Kind::kCert:
      return absl::StrCat("c", p.cert_subject);
    case Principal::Kind::kUid:
      return absl::StrCat("u", p.uid);
  }
  return "";
}

uint64_t TokenBucket(const std::array<unsigned char, 32>& sha256) {
  uint64_t b;
  memcpy(&b, sha256.data(), sizeof b);
  return b;
}

std::string ScopeText(const Principal& p) {
  return p.prefixes.empty() ? "every key" : absl::StrJoin(p.prefixes, " ");
}

}  // namespace

const char* AuthRoleName(AuthRole role) {
  switch (role) {
    case AuthRole::kRead:
      return "read";
    case AuthRole::kWrite:
      return "write";
    case AuthRole::kAdmin:
      return "admin";
  }
  return "?";
}

const char* RpcMethodName(RpcMethod method) {
  switch (method) {
    case RpcMethod::kIncrement:
      return "Increment";
    case RpcMethod::kIncrementBatch:
      return "IncrementBatch";
    case RpcMethod::kGet:
      return "Get";
    case RpcMethod::kBatchGet:
      return "BatchGet";
    case RpcMethod::kList:
      return "List";
    case RpcMethod::kSet:
      return "Set";
    case RpcMethod::kCompareAndSet:
      return "CompareAndSet";
    case RpcMethod::kDelete:
      return "Delete";
    case RpcMethod::kSnapshot:
      return "Snapshot";
    case RpcMethod::kGetStats:
      return "GetStats";
    case RpcMethod::kIncrementStream:
      return "IncrementStream";
  }
  return "?";
}

AuthRole RequiredRole(RpcMethod method) {
  switch (method) {
    case RpcMethod::kGet:
    case RpcMethod::kBatchGet:
    case RpcMethod::kList:
    case RpcMethod::kGetStats:
      return AuthRole::kRead;
    case RpcMethod::kIncrement:
    case RpcMethod::kIncrementBatch:
    case RpcMethod::kIncrementStream:
    case RpcMethod::kSet:
    case RpcMethod::kCompareAndSet:
    case RpcMethod::kDelete:
      return AuthRole::kWrite;
    case RpcMethod::kSnapshot:
      return AuthRole::kAdmin;
  }
  return AuthRole::kAdmin;
}

bool Principal::InScope(std::string_view key) const {
  if (prefixes.empty()) return true;
  for (const std::string& s : prefixes) {
    if (StartsWith(key, s)) return true;
  }
  return false;
}

absl::StatusOr<std::shared_ptr<const AuthPolicy>> AuthPolicy::Parse(std::string_view text,
                                                                    std::string_view source) {
  auto policy = std::make_shared<AuthPolicy>();
  std::map<std::string, int> seen;  // identity -> line
  int line_no = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    auto error = [&](absl::string_view what) {
      return absl::InvalidArgumentError(absl::StrCat(Sv(source), ":", line_no, ": ", what));
    };
    std::vector<std::string_view> fields = Fields(line);
    if (fields.empty()) continue;
    Principal p;
    p.line = line_no;
    if (absl::Status s = ParsePrincipal(fields[0], &p); !s.ok()) return error(s.message());
    if (fields.size() < 2) {
      return error(absl::StrCat("principal ", Sv(fields[0]),
                                " has no role: expected read, write or admin after it"));
    }
    if (absl::Status s = ParseRole(fields[1], &p.role); !s.ok()) return error(s.message());
    std::vector<std::string> prefixes;
    for (size_t i = 2; i < fields.size(); ++i) {
      if (absl::Status s = ValidateKey(fields[i]); !s.ok()) {
        return error(absl::StrCat("key prefix \"", Sv(fields[i]), "\" is not a valid key: ",
                                  s.message()));
      }
      prefixes.emplace_back(fields[i]);
    }
    p.prefixes = MinimalPrefixes(std::move(prefixes));
    auto [it, inserted] = seen.emplace(IdentityKey(p), line_no);
    if (!inserted) {
      return error(absl::StrCat("principal ", p.name, " is already given on line ", it->second,
                                "; give each principal one line"));
    }
    if (p.kind == Principal::Kind::kToken) {
      policy->tokens_[TokenBucket(p.token_sha256)].push_back(policy->principals_.size());
    }
    policy->has_cert_principals_ |= p.kind == Principal::Kind::kCert;
    policy->has_uid_principals_ |= p.kind == Principal::Kind::kUid;
    policy->principals_.push_back(std::move(p));
  }
  if (policy->principals_.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(Sv(source), ": no principal: every call but Health would be refused (see "
                                 "deploy/auth.example for the format)"));
  }
  return std::shared_ptr<const AuthPolicy>(std::move(policy));
}

absl::StatusOr<std::shared_ptr<const AuthPolicy>> AuthPolicy::LoadFile(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot open the auth file ", path, ": ", strerror(errno)));
  }
  std::string text;
  char buf[65536];
  while (true) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      close(fd);
      return absl::InvalidArgumentError(
          absl::StrCat("cannot read the auth file ", path, ": ", strerror(err)));
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return Parse(text, path);
}

absl::StatusOr<std::shared_ptr<const AuthPolicy>> ReloadAuthPolicy(const std::string& path,
                                                                   LogLevel success_level) {
  absl::StatusOr<std::shared_ptr<const AuthPolicy>> policy = AuthPolicy::LoadFile(path);
  if (policy.ok()) {
    Log(success_level, "auth file reloaded",
        {{"auth_file", path}, {"principals", (*policy)->principals().size()}});
  } else {
    Log(LogLevel::kError, "auth file not reloaded; the policy in force is kept",
        {{"auth_file", path}, {"error", std::string(policy.status().message())}});
  }
  return policy;
}

const Principal* AuthPolicy::Lookup(const CallIdentity& id) const {
  if (id.malformed_authorization) return nullptr;
  if (id.bearer_token) {
    const std::array<unsigned char, 32> md = TokenSha256(*id.bearer_token);
    auto it = tokens_.find(TokenBucket(md));
    if (it == tokens_.end()) return nullptr;
    for (size_t i : it->second) {
      const Principal& p = principals_[i];
      if (CRYPTO_memcmp(md.data(), p.token_sha256.data(), md.size()) == 0) return &p;
    }
    return nullptr;
  }
  for (const Principal& p : principals_) {
    if (p.kind != Principal::Kind::kCert || StartsWith(p.cert_subject, "CN=")) continue;
    for (const std::string& san : id.cert_sans) {
      if (san == p.cert_subject) return &p;
    }
  }
  if (id.cert_cn) {
    for (const Principal& p : principals_) {
      if (p.kind == Principal::Kind::kCert && StartsWith(p.cert_subject, "CN=") &&
          std::string_view(p.cert_subject).substr(3) == *id.cert_cn) {
        return &p;
      }
    }
  }
  if (id.peer_uid) {
    for (const Principal& p : principals_) {
      if (p.kind == Principal::Kind::kUid && p.uid == *id.peer_uid) return &p;
    }
  }
  return nullptr;
}

absl::Status AuthorizeMethod(const Principal* p, const CallIdentity& id, RpcMethod method) {
  if (p == nullptr) {
    if (id.malformed_authorization) {
      return absl::UnauthenticatedError(
          "malformed authorization metadata: expected \"Bearer <token>\"");
    }
    if (id.bearer_token) return absl::UnauthenticatedError("unknown bearer token");
    if (!id.cert_sans.empty() || id.cert_cn) {
      return absl::UnauthenticatedError(absl::StrCat(
          "client certificate (", id.cert_cn ? absl::StrCat("CN=", *id.cert_cn) : "no CN",
          id.cert_sans.empty() ? "" : absl::StrCat(", SANs ", absl::StrJoin(id.cert_sans, " ")),
          ") is not in the auth file"));
    }
    if (id.peer_uid) {
      return absl::UnauthenticatedError(
          absl::StrCat("unix peer uid ", *id.peer_uid, " is not in the auth file"));
    }
    return absl::UnauthenticatedError(
        "no credentials: send \"authorization: Bearer <token>\" metadata, or connect with a "
        "client certificate or unix uid that the auth file lists");
  }
  if (!p->MayCall(method)) {
    return absl::PermissionDeniedError(absl::StrCat(
        p->name, " (role ", AuthRoleName(p->role), ") may not call ", RpcMethodName(method),
        ": it needs role ", AuthRoleName(RequiredRole(method))));
  }
  return absl::OkStatus();
}

absl::Status AuthorizeKey(const Principal& p, std::string_view key, std::string_view what) {
  if (p.InScope(key)) return absl::OkStatus();
  return absl::PermissionDeniedError(absl::StrCat(Sv(what), " \"", Sv(key), "\" is outside the key prefixes of ",
                                                  p.name, " (", ScopeText(p), ")"));
}

absl::StatusOr<std::vector<std::string>> ListRanges(const Principal& p, std::string_view prefix) {
  if (p.InScope(prefix)) return std::vector<std::string>{std::string(prefix)};
  std::vector<std::string> out;
  for (const std::string& s : p.prefixes) {
    if (StartsWith(s, prefix)) out.push_back(s);
  }
  if (out.empty()) {
    return absl::PermissionDeniedError(absl::StrCat("List prefix \"", Sv(prefix),
                                                    "\" is outside the key prefixes of ", p.name,
                                                    " (", ScopeText(p), ")"));
  }
  return out;
}

}  // namespace countersd
