// Requests that do not parse as their typed message, sent as raw bytes
// through the wire (grpc::GenericStub) to the real daemon: a string field
// that is not UTF-8 (which proto3 parsers reject) and a malformed message
// each get INVALID_ARGUMENT naming what is wrong (server/request_decoding.h),
// never INTERNAL, and change no counter.
#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "proto/grpc_deadline.h"
#include "shared/abseil_string_view.h"
#include "shared/monotonic_time.h"
#include "tests/shared/proto_wire.h"
#include "tests/e2e/daemon_harness.h"

namespace countersd::testing {
namespace {

using ::testing::HasSubstr;

using wire::Bytes;
using wire::Int;
using wire::Varint;

// "ok" then a lone continuation byte: invalid UTF-8 at offset 2.
const std::string kBadKey = "ok\xff";
const std::string kBadUtf8AtTwo = "must be valid UTF-8 (invalid byte sequence at offset 2)";

class RequestDecodingTest : public SharedDaemonTest {
 protected:
  static void SetUpTestSuite() {
    DaemonOptions options;
    options.handlers = 2;
    StartSharedDaemon(options);
  }
  void SetUp() override {
    SharedDaemonTest::SetUp();
    if (daemon_ == nullptr) return;
    channel_ = grpc::CreateChannel(daemon_->address(), grpc::InsecureChannelCredentials());
    stub_ = counters::v1::CounterService::NewStub(channel_);
  }

  // Sends `bytes` as the request of CounterService.<method>; returns the
  // status and, when OK, the response bytes in `*response`.
  grpc::Status Call(std::string_view method, std::string_view bytes,
                    std::string* response = nullptr) {
    grpc::GenericStub generic(channel_);
    grpc::CompletionQueue cq;
    grpc::ClientContext ctx;
    ctx.set_deadline(GrpcDeadlineAfter(absl::Seconds(30)));
    grpc::Slice slice{std::string(bytes)};
    grpc::ByteBuffer request(&slice, 1);
    auto call = generic.PrepareUnaryCall(
        &ctx, absl::StrCat("/counters.v1.CounterService/", Sv(method)), request, &cq);
    call->StartCall();
    grpc::ByteBuffer reply;
    grpc::Status status;
    call->Finish(&reply, &status, this);
    void* tag = nullptr;
    bool ok = false;
    EXPECT_TRUE(cq.Next(&tag, &ok));
    EXPECT_EQ(tag, this);
    cq.Shutdown();
    while (cq.Next(&tag, &ok)) {
    }
    if (status.ok() && response != nullptr) {
      std::vector<grpc::Slice> slices;
      EXPECT_TRUE(reply.Dump(&slices).ok());
      response->clear();
      for (const grpc::Slice& s : slices) {
        response->append(reinterpret_cast<const char*>(s.begin()), s.size());
      }
    }
    return status;
  }

  // Sets counter `key` to `value` through the typed stub.
  void SetCounter(const std::string& key, int64_t value) {
    grpc::ClientContext ctx;
    counters::v1::SetRequest req;
    req.set_key(key);
    req.set_value(value);
    counters::v1::SetResponse resp;
    grpc::Status s = stub_->Set(&ctx, req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  int64_t GetCounter(const std::string& key) {
    grpc::ClientContext ctx;
    counters::v1::GetRequest req;
    req.set_key(key);
    counters::v1::GetResponse resp;
    grpc::Status s = stub_->Get(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << key << ": " << s.error_message();
    return resp.value();
  }

  counters::v1::GetStatsResponse Stats() {
    grpc::ClientContext ctx;
    counters::v1::GetStatsResponse resp;
    grpc::Status s = stub_->GetStats(&ctx, counters::v1::GetStatsRequest(), &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp;
  }
  static uint64_t ErrorsOfServingHandler(const counters::v1::GetStatsResponse& stats) {
    for (const auto& h : stats.handlers()) {
      if (h.pid() == stats.served_by_pid()) return h.errors();
    }
    return 0;
  }

  // Expects INVALID_ARGUMENT whose message is exactly `message`.
  void ExpectInvalid(std::string_view method, std::string_view bytes, std::string_view message) {
    SCOPED_TRACE(method);
    grpc::Status s = Call(method, bytes);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << "code " << s.error_code() << ": " << s.error_message();
    EXPECT_EQ(s.error_message(), message);
  }

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<counters::v1::CounterService::Stub> stub_;
};

TEST_F(RequestDecodingTest, RawBytesOfAValidRequestAreServed) {
  // The raw path itself: hand-encoded valid requests work and answer the
  // typed response, so the INVALID_ARGUMENTs below are about the bad field.
  const std::string key = TestKey("k");
  std::string reply;
  ASSERT_TRUE(Call("Increment", absl::StrCat(Bytes(1, key), Int(2, 41)), &reply).ok());
  counters::v1::IncrementResponse inc;
  ASSERT_TRUE(inc.ParseFromString(reply));
  EXPECT_EQ(inc.value(), 41);
  EXPECT_EQ(GetCounter(key), 41);
}

TEST_F(RequestDecodingTest, NonUtf8KeyIsInvalidArgumentNamingTheFieldOnEveryKeyedRpc) {
  const std::string key = TestKey("k");
  SetCounter(key, 7);
  const std::string k = absl::StrCat("key ", kBadUtf8AtTwo);
  ExpectInvalid("Increment", absl::StrCat(Bytes(1, kBadKey), Int(2, 5)), k);
  ExpectInvalid("Get", Bytes(1, kBadKey), k);
  ExpectInvalid("Set", absl::StrCat(Bytes(1, kBadKey), Int(2, 9)), k);
  ExpectInvalid("CompareAndSet", absl::StrCat(Bytes(1, kBadKey), Int(2, 0), Int(3, 9)), k);
  ExpectInvalid("Delete", Bytes(1, kBadKey), k);
  // The bad key in a valid message whose other fields come first.
  ExpectInvalid("Set", absl::StrCat(Int(2, 9), Bytes(1, kBadKey)), k);
  EXPECT_EQ(GetCounter(key), 7);
}

TEST_F(RequestDecodingTest, NonUtf8KeyInABatchNamesItsIndexAndAppliesNothing) {
  const std::string good = TestKey("good");
  SetCounter(good, 10);
  // increments[0] is a good key, increments[1] the bad one.
  const std::string batch =
      absl::StrCat(Bytes(1, absl::StrCat(Bytes(1, good), Int(2, 1))),
                   Bytes(1, absl::StrCat(Bytes(1, kBadKey), Int(2, 1))));
  ExpectInvalid("IncrementBatch", batch, absl::StrCat("increments[1].key ", kBadUtf8AtTwo));
  EXPECT_EQ(GetCounter(good), 10);

  ExpectInvalid("BatchGet", absl::StrCat(Bytes(1, good), Bytes(1, good), Bytes(1, kBadKey)),
                absl::StrCat("keys[2] ", kBadUtf8AtTwo));
}

TEST_F(RequestDecodingTest, NonUtf8ListPrefixOrPageTokenNamesThatField) {
  ExpectInvalid("List", absl::StrCat(Bytes(1, kBadKey), Int(2, 10)),
                absl::StrCat("prefix ", kBadUtf8AtTwo));
  ExpectInvalid("List", absl::StrCat(Bytes(1, "ok"), Int(2, 10), Bytes(3, kBadKey)),
                absl::StrCat("page_token ", kBadUtf8AtTwo));
}

// Protobuf logs every parse failure itself; through the handler's library
// log routing (server/library_logs.h) that is a JSON line like every other,
// at most one a second per source line and handler, however many requests.
TEST_F(RequestDecodingTest, ProtobufsComplaintsAreRateLimitedJsonLines) {
  const absl::Time start = MonotonicNow();
  constexpr int kRequests = 200;
  for (int i = 0; i < kRequests; ++i) {
    ASSERT_EQ(Call("Increment", Bytes(1, kBadKey)).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  }
  const int64_t seconds = absl::ToInt64Seconds(absl::Ceil(MonotonicNow() - start, absl::Seconds(1)));
  ASSERT_TRUE(daemon_->WaitForLog("\"library\":\"protobuf\"", absl::Seconds(30)))
      << "protobuf's complaint was not logged through our logger:\n" << daemon_->log();
  const std::string log = daemon_->log();
  int protobuf_lines = 0;
  for (absl::string_view line : absl::StrSplit(log, '\n', absl::SkipEmpty())) {
    EXPECT_TRUE(absl::StartsWith(line, "{")) << "a line that is not JSON: " << line;
    if (absl::StrContains(line, "\"library\":\"protobuf\"")) ++protobuf_lines;
  }
  // Two handlers, each with its own limit; other tests' bad requests count too.
  EXPECT_LE(protobuf_lines, 2 * (seconds + 2)) << log;
  EXPECT_LT(protobuf_lines, kRequests);
}

TEST_F(RequestDecodingTest, MalformedMessageIsInvalidArgumentNamingTheType) {
  const std::string key = TestKey("k");
  SetCounter(key, 3);
  const counters::v1::GetStatsResponse before = Stats();
  // Field 1 claims 100 bytes; 3 follow.
  const std::string truncated = absl::StrCat(Varint(1 << 3 | 2), Varint(100), "abc");
  ExpectInvalid("Increment", truncated,
                "request is not a valid counters.v1.IncrementRequest message");
  // A varint that never ends.
  ExpectInvalid("Get", absl::StrCat("\x08", std::string(11, '\xff')),
                "request is not a valid counters.v1.GetRequest message");
  // A sub-message that is itself malformed, in a batch whose first increment
  // is good.
  const std::string batch =
      absl::StrCat(Bytes(1, absl::StrCat(Bytes(1, key), Int(2, 1))), Bytes(1, truncated));
  ExpectInvalid("IncrementBatch", batch,
                "request is not a valid counters.v1.IncrementBatchRequest message");
  EXPECT_EQ(GetCounter(key), 3);
  // Each rejected request counts as an error of the handler that answered
  // it (one channel: one connection, one handler).
  const counters::v1::GetStatsResponse after = Stats();
  ASSERT_EQ(before.served_by_pid(), after.served_by_pid());
  EXPECT_GE(ErrorsOfServingHandler(after), ErrorsOfServingHandler(before) + 3);
}

}  // namespace
}  // namespace countersd::testing
