// A call's identity from its grpc::ServerContext (call_identity.h).
#include "server/call_identity.h"

#include <strings.h>

#include <string>

#include "grpc/grpc_security_constants.h"
#include "grpcpp/security/auth_context.h"
#include "server/peer_credentials.h"

namespace countersd {
namespace {

constexpr std::string_view kBearer = "Bearer ";

std::string_view View(const grpc::string_ref& s) { return std::string_view(s.data(), s.size()); }

}  // namespace

CallIdentity CallIdentityOf(const grpc::ServerContext& ctx, const AuthPolicy* policy) {
  CallIdentity id;
  const auto& metadata = ctx.client_metadata();
  if (auto it = metadata.find("authorization"); it != metadata.end()) {
    std::string_view value = View(it->second);
    if (value.size() > kBearer.size() &&
        strncasecmp(value.data(), kBearer.data(), kBearer.size()) == 0) {
      std::string_view token = value.substr(kBearer.size());
      while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
      while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
      if (token.empty()) {
        id.malformed_authorization = true;
      } else {
        id.bearer_token.emplace(token);
      }
    } else {
      id.malformed_authorization = true;
    }
  }
  if (policy != nullptr && !policy->has_cert_principals() && !policy->has_uid_principals()) {
    return id;
  }
  std::shared_ptr<const grpc::AuthContext> auth =
      policy == nullptr || policy->has_cert_principals() ? ctx.auth_context() : nullptr;
  if (auth != nullptr && auth->IsPeerAuthenticated()) {
    for (const grpc::string_ref& san : auth->FindPropertyValues(GRPC_X509_SAN_PROPERTY_NAME)) {
      id.cert_sans.emplace_back(View(san));
    }
    std::vector<grpc::string_ref> cn = auth->FindPropertyValues(GRPC_X509_CN_PROPERTY_NAME);
    if (!cn.empty()) id.cert_cn.emplace(View(cn.front()));
  }
  if (policy == nullptr || policy->has_uid_principals()) id.peer_uid = UnixPeerUid(ctx.peer());
  return id;
}

absl::StatusOr<AccessControl::Admission> AdmitCall(AccessControl& access,
                                                   const grpc::ServerContext* ctx,
                                                   RpcMethod method) {
  std::shared_ptr<const AuthPolicy> policy = access.policy();
  CallIdentity id = ctx != nullptr ? CallIdentityOf(*ctx, policy.get()) : CallIdentity{};
  return access.Admit(std::move(policy), id, method);
}

}  // namespace countersd
