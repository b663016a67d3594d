// Access control end to end (issue 12, "Who may do what"): the real daemon
// with --auth-file, over real gRPC with bearer tokens. Each role is allowed
// and refused exactly as the issue lists; a prefix-scoped principal is
// refused out-of-scope keys in every kind of call and a refused batch
// applies nothing; unknown and missing tokens are UNAUTHENTICATED; Health
// stays open; SIGHUP reloads the file and a broken one keeps the policy;
// a bad file at start exits 2 naming the line; no token ever reaches the
// log; counterctl's exit codes tell the two refusals apart.
#include <signal.h>

#include <algorithm>
#include <fstream>
#include <optional>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "proto/grpc_deadline.h"
#include "shared/bearer_token.h"
#include "tests/e2e/daemon_harness.h"

namespace countersd::testing {
namespace {

using namespace counters::v1;  // NOLINT: the RPC message types
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr int kHandlers = 2;

std::string MustNewToken() {
  absl::StatusOr<std::string> t = NewBearerToken();
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? *t : "";
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  ASSERT_TRUE(out.good()) << path;
}

// A stub on its own connection, with `token` (if any) on every call.
class Caller {
 public:
  Caller(const std::string& address, std::string token)
      : stub_(NewStubOnOwnConnection(address)), token_(std::move(token)) {}

  template <typename Method, typename Request, typename Response>
  grpc::Status Call(Method method, const Request& req, Response* resp) {
    grpc::ClientContext ctx;
    ctx.set_deadline(GrpcDeadlineAfter(absl::Seconds(30)));
    if (!token_.empty()) ctx.AddMetadata("authorization", absl::StrCat("Bearer ", token_));
    return (stub_.get()->*method)(&ctx, req, resp);
  }

  grpc::Status Increment(const std::string& key, int64_t delta = 1) {
    IncrementRequest req;
    req.set_key(key);
    req.set_delta(delta);
    IncrementResponse resp;
    return Call(&CounterService::Stub::Increment, req, &resp);
  }
  grpc::Status Get(const std::string& key) {
    GetRequest req;
    req.set_key(key);
    GetResponse resp;
    return Call(&CounterService::Stub::Get, req, &resp);
  }
  // Every method of CounterService with a harmless request on `key`.
  std::map<std::string, grpc::Status> CallEveryMethod(const std::string& key) {
    std::map<std::string, grpc::Status> out;
    out["Increment"] = Increment(key);
    {
      IncrementBatchRequest req;
      req.add_increments()->set_key(key);
      IncrementBatchResponse resp;
      out["IncrementBatch"] = Call(&CounterService::Stub::IncrementBatch, req, &resp);
    }
    out["Get"] = Get(key);
    {
      BatchGetRequest req;
      req.add_keys(key);
      BatchGetResponse resp;
      out["BatchGet"] = Call(&CounterService::Stub::BatchGet, req, &resp);
    }
    {
      ListRequest req;
      req.set_prefix(key);
      ListResponse resp;
      out["List"] = Call(&CounterService::Stub::List, req, &resp);
    }
    {
      SetRequest req;
      req.set_key(key);
      req.set_value(5);
      SetResponse resp;
      out["Set"] = Call(&CounterService::Stub::Set, req, &resp);
    }
    {
      CompareAndSetRequest req;
      req.set_key(key);
      req.set_expected(5);
      req.set_value(6);
      CompareAndSetResponse resp;
      out["CompareAndSet"] = Call(&CounterService::Stub::CompareAndSet, req, &resp);
    }
    {
      DeleteRequest req;
      req.set_key(key);
      DeleteResponse resp;
      out["Delete"] = Call(&CounterService::Stub::Delete, req, &resp);
    }
    {
      SnapshotRequest req;
      SnapshotResponse resp;
      out["Snapshot"] = Call(&CounterService::Stub::Snapshot, req, &resp);
    }
    {
      GetStatsRequest req;
      GetStatsResponse resp;
      out["GetStats"] = Call(&CounterService::Stub::GetStats, req, &resp);
    }
    out["IncrementStream"] = IncrementStream(key);
    return out;
  }

  // One IncrementStream of one message on `key`: the stream's status, or
  // the message's if the stream ended OK.
  grpc::Status IncrementStream(const std::string& key) {
    grpc::ClientContext ctx;
    ctx.set_deadline(GrpcDeadlineAfter(absl::Seconds(30)));
    if (!token_.empty()) ctx.AddMetadata("authorization", absl::StrCat("Bearer ", token_));
    auto stream = stub_->IncrementStream(&ctx);
    counters::v1::IncrementStreamRequest req;
    req.set_sequence(1);
    req.add_increments()->set_key(key);
    stream->Write(req);
    stream->WritesDone();
    counters::v1::IncrementStreamResponse answer;
    grpc::Status message_status;
    while (stream->Read(&answer)) {
      message_status = grpc::Status(static_cast<grpc::StatusCode>(answer.code()), answer.message());
    }
    grpc::Status status = stream->Finish();
    return status.ok() ? message_status : status;
  }

 private:
  std::unique_ptr<CounterService::Stub> stub_;
  std::string token_;
};

class AuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* name : {"admin", "write", "read", "scoped_write", "scoped_read"}) {
      tokens_[name] = MustNewToken();
    }
    auth_file_ = absl::StrCat(dir_.path(), "/auth");
    WriteFile(auth_file_, PolicyText());
    absl::StatusOr<std::unique_ptr<Daemon>> d = Daemon::Start(
        {.handlers = kHandlers,
         .extra_flags = {absl::StrCat("--auth-file=", auth_file_), "--log-level=debug"}});
    ASSERT_TRUE(d.ok()) << d.status();
    daemon_ = *std::move(d);
  }

  void TearDown() override {
    if (daemon_ == nullptr) return;
    // Whatever the test did, no token reached the log.
    const std::string log = daemon_->log();
    for (const auto& [name, token] : tokens_) {
      EXPECT_EQ(log.find(token), std::string::npos) << "the " << name << " token is in the log";
    }
    for (const std::string& token : extra_tokens_) {
      EXPECT_EQ(log.find(token), std::string::npos) << "a token is in the log";
    }
  }

  std::string PolicyText() {
    return absl::StrCat("# e2e policy\n", TokenPrincipal(tokens_["admin"]), " admin\n",
                        TokenPrincipal(tokens_["write"]), " write\n",
                        TokenPrincipal(tokens_["read"]), " read\n",
                        TokenPrincipal(tokens_["scoped_write"]), " write jobs/ quota/\n",
                        TokenPrincipal(tokens_["scoped_read"]), " read jobs/ quota/\n");
  }

  Caller As(const std::string& name) { return Caller(daemon_->address(), tokens_[name]); }

  // The value of `key`, read as admin (nullopt if absent).
  std::optional<int64_t> Value(const std::string& key) {
    GetRequest req;
    req.set_key(key);
    GetResponse resp;
    grpc::Status s = As("admin").Call(&CounterService::Stub::Get, req, &resp);
    if (s.error_code() == grpc::StatusCode::NOT_FOUND) return std::nullopt;
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.value();
  }

  // SIGHUP to the supervisor; waits until it and every handler have logged
  // the reload's outcome `msg` `count` times in all.
  void ReloadAndWait(const std::string& msg, int count) {
    ASSERT_EQ(kill(daemon_->pid(), SIGHUP), 0);
    ASSERT_TRUE(daemon_->WaitForLogCount(absl::StrCat("\"msg\":\"", msg, "\""), count,
                                         absl::Seconds(30)))
        << daemon_->log();
  }

  ScopedTempDir dir_;
  std::string auth_file_;
  std::map<std::string, std::string> tokens_;
  std::vector<std::string> extra_tokens_;
  std::unique_ptr<Daemon> daemon_;
};

TEST_F(AuthTest, EachRoleMayCallExactlyTheMethodsTheIssueLists) {
  const std::vector<std::string> read = {"Get", "BatchGet", "List", "GetStats"};
  const std::vector<std::string> write = {
      "Get", "BatchGet", "List", "GetStats", "Increment", "IncrementBatch",
      "Set", "CompareAndSet", "Delete", "IncrementStream"};
  const std::map<std::string, std::vector<std::string>> allowed = {
      {"read", read}, {"write", write}, {"admin", {}}};
  for (const auto& [role, methods] : allowed) {
    // Make the key exist, so that Get and Delete are OK when allowed.
    ASSERT_TRUE(As("admin").Increment("matrix/" + role).ok());
    std::map<std::string, grpc::Status> got = As(role).CallEveryMethod("matrix/" + role);
    ASSERT_EQ(got.size(), 11u);
    for (const auto& [method, status] : got) {
      const bool expected = role == "admin" ||
                            std::find(methods.begin(), methods.end(), method) != methods.end();
      if (expected) {
        EXPECT_TRUE(status.ok()) << role << " " << method << ": " << status.error_message();
      } else {
        EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED)
            << role << " " << method << ": " << status.error_message();
        EXPECT_THAT(status.error_message(), HasSubstr(absl::StrCat("may not call ", method)));
      }
    }
  }
}

TEST_F(AuthTest, MissingUnknownAndMalformedCredentialsAreUnauthenticatedHealthIsOpen) {
  const std::string unknown = MustNewToken();
  extra_tokens_.push_back(unknown);
  for (const std::string& token : {std::string(), unknown, std::string("x")}) {
    std::map<std::string, grpc::Status> got =
        Caller(daemon_->address(), token).CallEveryMethod("jobs/x");
    for (const auto& [method, status] : got) {
      EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED) << method;
    }
  }
  {
    auto stub = NewStub(daemon_->address());
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Basic dXNlcjpwYXNz");
    GetStatsRequest req;
    GetStatsResponse resp;
    grpc::Status s = stub->GetStats(&ctx, req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
    EXPECT_THAT(s.error_message(), HasSubstr("malformed authorization"));
  }
  auto channel = grpc::CreateChannel(daemon_->address(), grpc::InsecureChannelCredentials());
  auto health = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext ctx;
  grpc::health::v1::HealthCheckRequest req;
  grpc::health::v1::HealthCheckResponse resp;
  ASSERT_TRUE(health->Check(&ctx, req, &resp).ok());
  EXPECT_EQ(resp.status(), grpc::health::v1::HealthCheckResponse::SERVING);
}

TEST_F(AuthTest, AScopedPrincipalIsRefusedOutOfScopeKeysAndARefusedBatchAppliesNothing) {
  Caller w = As("scoped_write");
  ASSERT_TRUE(w.Increment("jobs/a", 10).ok());
  ASSERT_TRUE(w.Increment("quota/b", 20).ok());
  ASSERT_TRUE(As("admin").Increment("other/c", 30).ok());

  grpc::Status inc = w.Increment("other/c");
  EXPECT_EQ(inc.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(inc.error_message(), HasSubstr("\"other/c\""));
  EXPECT_EQ(w.Get("other/c").error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(As("scoped_read").Get("other/c").error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_TRUE(As("scoped_read").Get("jobs/a").ok());
  {
    BatchGetRequest req;
    req.add_keys("jobs/a");
    req.add_keys("other/c");
    BatchGetResponse resp;
    grpc::Status s = As("scoped_read").Call(&CounterService::Stub::BatchGet, req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
    EXPECT_THAT(s.error_message(), HasSubstr("keys[1] \"other/c\""));
    EXPECT_EQ(resp.counters_size(), 0);
  }
  {
    IncrementBatchRequest req;
    IncrementRequest* in = req.add_increments();
    in->set_key("jobs/a");
    in->set_delta(1);
    IncrementRequest* new_key = req.add_increments();
    new_key->set_key("quota/new");
    new_key->set_delta(1);
    IncrementRequest* out = req.add_increments();
    out->set_key("other/c");
    out->set_delta(1);
    IncrementBatchResponse resp;
    grpc::Status s = w.Call(&CounterService::Stub::IncrementBatch, req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
    EXPECT_THAT(s.error_message(), HasSubstr("increments[2].key \"other/c\""));
  }
  // Nothing of the refused batch was applied.
  EXPECT_EQ(Value("jobs/a"), 10);
  EXPECT_EQ(Value("quota/new"), std::nullopt);
  EXPECT_EQ(Value("other/c"), 30);
  for (const std::string& who : {"scoped_write", "scoped_read"}) {
    ListRequest req;
    req.set_prefix("other/");
    ListResponse resp;
    grpc::Status s = As(who).Call(&CounterService::Stub::List, req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << who;
    EXPECT_THAT(s.error_message(), HasSubstr("List prefix \"other/\""));
  }
}

TEST_F(AuthTest, AListOfAPrefixOfSeveralScopePrefixesReturnsTheInScopeKeysSortedAndPaged) {
  Caller admin = As("admin");
  for (const char* key : {"a", "jobs", "jobs/1", "jobs/2", "jobsx", "quota/1", "quota/2",
                          "quota0", "z"}) {
    ASSERT_TRUE(admin.Increment(key).ok());
  }
  Caller r = As("scoped_read");
  for (int page_size : {1, 2, 3, 100}) {
    std::vector<std::string> keys;
    ListRequest req;
    req.set_page_size(page_size);
    for (int pages = 0; pages < 20; ++pages) {
      ListResponse resp;
      grpc::Status s = r.Call(&CounterService::Stub::List, req, &resp);
      ASSERT_TRUE(s.ok()) << s.error_message();
      for (const Counter& c : resp.counters()) keys.push_back(c.key());
      if (resp.next_page_token().empty()) break;
      req.set_page_token(resp.next_page_token());
    }
    EXPECT_THAT(keys, ElementsAre("jobs/1", "jobs/2", "quota/1", "quota/2"))
        << "page size " << page_size;
  }
  ListRequest sub;
  sub.set_prefix("jobs/");
  ListResponse resp;
  ASSERT_TRUE(r.Call(&CounterService::Stub::List, sub, &resp).ok());
  EXPECT_EQ(resp.counters_size(), 2);
}

TEST_F(AuthTest, SighupReloadsTheFileAndABrokenFileKeepsThePolicyInForce) {
  const std::string reloaded = "auth file reloaded";
  const std::string kept = "auth file not reloaded; the policy in force is kept";
  const std::string newcomer = MustNewToken();
  extra_tokens_.push_back(newcomer);
  EXPECT_EQ(Caller(daemon_->address(), newcomer).Increment("jobs/n").error_code(),
            grpc::StatusCode::UNAUTHENTICATED);

  // The write token becomes read, the newcomer gets write; read is dropped.
  WriteFile(auth_file_, absl::StrCat(TokenPrincipal(tokens_["admin"]), " admin\n",
                                     TokenPrincipal(tokens_["write"]), " read\n",
                                     TokenPrincipal(newcomer), " write jobs/\n"));
  ReloadAndWait(reloaded, 1 + kHandlers);
  for (int i = 0; i < 2 * kHandlers; ++i) {  // new connections: every handler
    EXPECT_TRUE(Caller(daemon_->address(), newcomer).Increment("jobs/n").ok());
    EXPECT_EQ(As("write").Increment("jobs/w").error_code(), grpc::StatusCode::PERMISSION_DENIED);
    EXPECT_EQ(As("read").Get("jobs/n").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  }

  WriteFile(auth_file_, absl::StrCat(TokenPrincipal(newcomer), " wrte jobs/\n"));
  ReloadAndWait(kept, 1 + kHandlers);
  EXPECT_THAT(daemon_->log(), HasSubstr("auth:1: unknown role"));
  for (int i = 0; i < 2 * kHandlers; ++i) {
    EXPECT_TRUE(Caller(daemon_->address(), newcomer).Increment("jobs/n").ok());
    EXPECT_TRUE(As("admin").Get("jobs/n").ok());
  }
  EXPECT_EQ(Value("jobs/n"), 4 * kHandlers);
}

TEST_F(AuthTest, RefusalsAreLoggedNamingThePrincipalNotTheToken) {
  ASSERT_EQ(As("read").Increment("jobs/x").error_code(), grpc::StatusCode::PERMISSION_DENIED);
  const std::string name = absl::StrCat("token:sha256:", TokenSha256Hex(tokens_["read"]).substr(0, 8));
  ASSERT_TRUE(daemon_->WaitForLog(name, absl::Seconds(30)));
  bool found = false;
  for (const std::string& line : daemon_->LogLinesWithMsg("call refused")) {
    if (JsonField(line, "principal").rfind(name, 0) == 0) {
      found = true;
      EXPECT_EQ(JsonField(line, "method"), "Increment");
      EXPECT_EQ(JsonField(line, "code"), "PERMISSION_DENIED");
    }
  }
  EXPECT_TRUE(found) << daemon_->log();
  // The full hash is not logged either (TearDown checks the tokens).
  EXPECT_EQ(daemon_->log().find(TokenSha256Hex(tokens_["read"])), std::string::npos);
}

TEST_F(AuthTest, CounterctlTellsUnauthenticatedFromPermissionDenied) {
  const std::string ctl = CounterctlPath();
  if (ctl.empty()) GTEST_SKIP() << "counterctl not built";
  const std::string token_file = absl::StrCat(dir_.path(), "/read-token");
  WriteFile(token_file, tokens_["read"] + "\n");
  const std::string addr = absl::StrCat("--addr=", daemon_->address());

  absl::StatusOr<CommandResult> none = RunCommand({ctl, addr, "get", "jobs/x"});
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->exit_code, 4) << none->err;
  EXPECT_THAT(none->err, HasSubstr("authentication failed"));
  EXPECT_THAT(none->err, HasSubstr("no token given: use --token-file or $COUNTERS_TOKEN"));

  absl::StatusOr<CommandResult> denied =
      RunCommand({ctl, addr, "--token-file", token_file, "inc", "jobs/x"});
  ASSERT_TRUE(denied.ok());
  EXPECT_EQ(denied->exit_code, 5) << denied->err;
  EXPECT_THAT(denied->err, HasSubstr("permission denied"));

  // $COUNTERS_TOKEN works, and --token-file wins over it.
  absl::StatusOr<CommandResult> env = RunCommand(
      {ctl, addr, "inc", "jobs/x"}, absl::Seconds(60), {"COUNTERS_TOKEN=" + tokens_["write"]});
  ASSERT_TRUE(env.ok());
  EXPECT_EQ(env->exit_code, 0) << env->err;
  absl::StatusOr<CommandResult> both =
      RunCommand({ctl, addr, "--token-file", token_file, "inc", "jobs/x"}, absl::Seconds(60),
                 {"COUNTERS_TOKEN=" + tokens_["write"]});
  ASSERT_TRUE(both.ok());
  EXPECT_EQ(both->exit_code, 5) << both->err;
}

// A request that does not decode (raw bytes: a key that is not UTF-8) tells
// a caller that may not make the call only that: UNAUTHENTICATED or
// PERMISSION_DENIED, not what is wrong with the request.
TEST_F(AuthTest, ARequestThatDoesNotDecodeIsRefusedToACallerWhoMayNotMakeIt) {
  auto raw_increment = [&](const std::string& token) {
    auto channel = grpc::CreateChannel(daemon_->address(), grpc::InsecureChannelCredentials());
    grpc::GenericStub generic(channel);
    grpc::CompletionQueue cq;
    grpc::ClientContext ctx;
    ctx.set_deadline(GrpcDeadlineAfter(absl::Seconds(30)));
    if (!token.empty()) ctx.AddMetadata("authorization", absl::StrCat("Bearer ", token));
    grpc::Slice slice{std::string("\x0a\x03ok\xff", 5)};  // key: "ok\xff", not UTF-8
    grpc::ByteBuffer request(&slice, 1);
    auto call =
        generic.PrepareUnaryCall(&ctx, "/counters.v1.CounterService/Increment", request, &cq);
    call->StartCall();
    grpc::ByteBuffer reply;
    grpc::Status status;
    call->Finish(&reply, &status, &cq);
    void* tag = nullptr;
    bool ok = false;
    EXPECT_TRUE(cq.Next(&tag, &ok));
    cq.Shutdown();
    while (cq.Next(&tag, &ok)) {
    }
    return status;
  };
  EXPECT_EQ(raw_increment("").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(raw_increment(tokens_["read"]).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(raw_increment(tokens_["write"]).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST(AuthStartTest, ABadAuthFileAtStartExits2NamingTheLine) {
  ScopedTempDir dir;
  const std::string path = absl::StrCat(dir.path(), "/auth");
  WriteFile(path, "uid:1000 write\ntoken:sha256:1234 read\n");
  absl::StatusOr<CommandResult> r =
      RunCommand({CountersdPath(), "--listen=127.0.0.1:0", absl::StrCat("--data-dir=", dir.path(), "/d"),
                  absl::StrCat("--auth-file=", path)});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 2) << r->err;
  EXPECT_THAT(r->err, HasSubstr(absl::StrCat(path, ":2: token:sha256: needs 64 hex digits")));

  absl::StatusOr<CommandResult> missing =
      RunCommand({CountersdPath(), "--listen=127.0.0.1:0", absl::StrCat("--data-dir=", dir.path(), "/d"),
                  absl::StrCat("--auth-file=", dir.path(), "/none")});
  ASSERT_TRUE(missing.ok()) << missing.status();
  EXPECT_EQ(missing->exit_code, 2) << missing->err;
  EXPECT_THAT(missing->err, HasSubstr("cannot open the auth file"));
}

}  // namespace
}  // namespace countersd::testing
