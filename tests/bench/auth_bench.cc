// What the access checks cost a call (issue 12: "what does authentication
// cost per call?"), without gRPC: a token's SHA-256 and its constant-time
// comparison with every token line, the role check and the key scope
// (AccessControl::Admit + CheckKey, as an Increment runs them), for auth
// files of 1, 20 and 200 token lines. A unary Increment costs ~11 us of CPU
// end to end here; compare with `counterctl bench` against a daemon with and
// without --auth-file for the whole call.
#include <string>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "server/access_control.h"
#include "shared/bearer_token.h"

namespace countersd {
namespace {

void BM_TokenSha256(benchmark::State& state) {
  const std::string token = *NewBearerToken();
  for (auto _ : state) benchmark::DoNotOptimize(TokenSha256(token));
}
BENCHMARK(BM_TokenSha256);

// An Increment's checks by the last of `range(0)` token principals.
void BM_AdmitIncrement(benchmark::State& state) {
  std::string text;
  std::string token;
  for (int i = 0; i < state.range(0); ++i) {
    token = *NewBearerToken();
    absl::StrAppend(&text, TokenPrincipal(token), " write jobs/ quota/\n");
  }
  AccessControl ac("bench", *AuthPolicy::Parse(text, "bench"));
  CallIdentity id;
  id.bearer_token = token;
  for (auto _ : state) {
    absl::StatusOr<AccessControl::Admission> a = ac.Admit(id, RpcMethod::kIncrement);
    benchmark::DoNotOptimize(ac.CheckKey(*a, RpcMethod::kIncrement, "quota/k17", "key"));
  }
}
BENCHMARK(BM_AdmitIncrement)->Arg(1)->Arg(20)->Arg(200);

}  // namespace
}  // namespace countersd

BENCHMARK_MAIN();
