// Request decoding (server/request_decoding.h) without a server: the typed
// parse, and the explanation of a failed one (a non-UTF-8 string field named
// by its path, or a malformed message named by its type), from contiguous
// bytes and from a multi-slice grpc::ByteBuffer.
#include "server/request_decoding.h"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "counters/v1/counters.pb.h"
#include "google/protobuf/struct.pb.h"
#include "grpc/health/v1/health.pb.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/slice.h"
#include "gtest/gtest.h"
#include "shared/abseil_string_view.h"
#include "tests/shared/proto_wire.h"

namespace countersd {
namespace {

namespace v1 = counters::v1;

using testing::wire::Bytes;
using testing::wire::Int;
using testing::wire::Varint;

std::string Utf8Error(std::string_view field, int offset) {
  return absl::StrCat(Sv(field), " must be valid UTF-8 (invalid byte sequence at offset ", offset,
                      ")");
}

// `bytes` as a ByteBuffer of one slice per `piece` bytes.
grpc::ByteBuffer Sliced(const std::string& bytes, size_t piece) {
  std::vector<grpc::Slice> slices;
  for (size_t i = 0; i < bytes.size(); i += piece) slices.emplace_back(bytes.substr(i, piece));
  return grpc::ByteBuffer(slices.data(), slices.size());
}

TEST(RequestDecodingTest, ValidRequestDecodesIntoTheMessage) {
  v1::IncrementRequest req;
  ASSERT_TRUE(DecodeRequest(absl::StrCat(Bytes(1, "héllo"), Int(2, -4)), &req).ok());
  EXPECT_EQ(req.key(), "héllo");
  EXPECT_EQ(req.delta(), -4);
  // No bytes at all: every field at its default.
  ASSERT_TRUE(DecodeRequest(std::string_view(), &req).ok());
  EXPECT_EQ(req.key(), "");
  EXPECT_FALSE(req.has_delta());
}

TEST(RequestDecodingTest, NonUtf8KeyNamesTheFieldAndTheOffsetInValidateKeysWords) {
  v1::IncrementRequest req;
  absl::Status s = DecodeRequest(absl::StrCat(Int(2, 1), Bytes(1, "abc\xc3")), &req);
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_EQ(s.message(), Utf8Error("key", 3));
  // An overlong encoding and a surrogate are not UTF-8 either.
  v1::DeleteRequest del;
  s = DecodeRequest(Bytes(1, "\xc0\xaf"), &del);
  EXPECT_EQ(s.message(), Utf8Error("key", 0));
  s = DecodeRequest(Bytes(1, "x\xed\xa0\x80"), &del);
  EXPECT_EQ(s.message(), Utf8Error("key", 1));
}

TEST(RequestDecodingTest, BatchFieldsAreNamedWithTheirIndex) {
  v1::IncrementBatchRequest batch;
  const std::string good = Bytes(1, absl::StrCat(Bytes(1, "a"), Int(2, 1)));
  absl::Status s =
      DecodeRequest(absl::StrCat(good, good, Bytes(1, Bytes(1, "\xff")), Bytes(1, Bytes(1, "\xfe"))),
                    &batch);
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_EQ(s.message(), Utf8Error("increments[2].key", 0));

  v1::BatchGetRequest get;
  s = DecodeRequest(absl::StrCat(Bytes(1, "a"), Bytes(1, "b\x80")), &get);
  EXPECT_EQ(s.message(), Utf8Error("keys[1]", 1));
}

TEST(RequestDecodingTest, TheFirstBadFieldByFieldNumberIsNamed) {
  v1::ListRequest list;
  // page_token (3) comes first on the wire; prefix (1) is named.
  absl::Status s = DecodeRequest(absl::StrCat(Bytes(3, "\xff"), Bytes(1, "p\xff")), &list);
  EXPECT_EQ(s.message(), Utf8Error("prefix", 1));
  s = DecodeRequest(absl::StrCat(Bytes(1, "p"), Bytes(3, "p\xff")), &list);
  EXPECT_EQ(s.message(), Utf8Error("page_token", 1));
}

TEST(RequestDecodingTest, MalformedBytesNameTheType) {
  v1::IncrementRequest req;
  const std::string want = "request is not a valid counters.v1.IncrementRequest message";
  // A length past the end, a varint that never ends, end-group with no
  // start, and a field number 0.
  for (const std::string& bad :
       {absl::StrCat(Varint(1 << 3 | 2), Varint(50), "abc"), absl::StrCat("\x10", std::string(11, '\xff')),
        std::string("\x0c"), std::string("\x00\x01", 2)}) {
    absl::Status s = DecodeRequest(bad, &req);
    EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
    EXPECT_EQ(s.message(), want);
  }
  // Malformed beats a bad key elsewhere in the message: the twin does not
  // parse either.
  absl::Status s = DecodeRequest(absl::StrCat(Bytes(1, "\xff"), Varint(2 << 3)), &req);
  EXPECT_EQ(s.message(), want);
}

TEST(RequestDecodingTest, AWrongWireTypeIsAnUnknownFieldNotAnError) {
  // Field 1 (a string) sent as a varint: protobuf keeps it as an unknown
  // field, so the request is valid (and its key empty, which ValidateKey
  // then rejects).
  v1::GetRequest req;
  EXPECT_TRUE(DecodeRequest(Int(1, 7), &req).ok());
  EXPECT_EQ(req.key(), "");
}

TEST(RequestDecodingTest, AnyMessageTypeHasATwinIncludingMapsOfAnotherFile) {
  // google.protobuf.Struct: map<string, Value> fields, Value's string_value
  // in a oneof; map entries are named by their index.
  google::protobuf::Struct st;
  const std::string entry = absl::StrCat(Bytes(1, "name"), Bytes(2, Bytes(3, "v\xff")));
  absl::Status s = ExplainParseFailure(Bytes(1, entry), *st.GetDescriptor());
  EXPECT_EQ(s.message(), Utf8Error("fields[0].value.string_value", 1));
  const std::string good = absl::StrCat(Bytes(1, "name"), Bytes(2, Bytes(3, "v")));
  s = ExplainParseFailure(absl::StrCat(Bytes(1, good), Bytes(1, Bytes(1, "\xff"))),
                          *st.GetDescriptor());
  EXPECT_EQ(s.message(), Utf8Error("fields[1].key", 0));
  grpc::health::v1::HealthCheckRequest health;
  s = DecodeRequest(Bytes(1, "svc\xff"), &health);
  EXPECT_EQ(s.message(), Utf8Error("service", 3));
}

TEST(RequestDecodingTest, AByteBufferOfManySlicesDecodesInPlaceAndIsCleared) {
  v1::IncrementBatchRequest batch;
  std::string bytes;
  for (int i = 0; i < 50; ++i) bytes += Bytes(1, absl::StrCat(Bytes(1, absl::StrCat("k", i)), Int(2, i)));
  grpc::ByteBuffer payload = Sliced(bytes, 7);
  ASSERT_TRUE(DecodeRequest(&payload, &batch).ok());
  ASSERT_EQ(batch.increments_size(), 50);
  EXPECT_EQ(batch.increments(49).key(), "k49");
  EXPECT_EQ(batch.increments(49).delta(), 49);
  EXPECT_FALSE(payload.Valid());

  // The bad key straddles two slices.
  bytes += Bytes(1, Bytes(1, "ok\xe2\x82"));
  payload = Sliced(bytes, 7);
  absl::Status s = DecodeRequest(&payload, &batch);
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_EQ(s.message(), Utf8Error("increments[50].key", 2));
  EXPECT_FALSE(payload.Valid());

  payload = Sliced(bytes.substr(0, bytes.size() - 1), 7);
  s = DecodeRequest(&payload, &batch);
  EXPECT_EQ(s.message(), "request is not a valid counters.v1.IncrementBatchRequest message");
}

}  // namespace
}  // namespace countersd
