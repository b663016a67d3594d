// Request decoding: a request's bytes into its typed message, or an
// INVALID_ARGUMENT that says why they are not one. See request_decoding.cc
// for how a failed parse is explained (the lenient twin).
//
// The serving loop (unary_call_loop.cc) receives CounterService requests as
// raw bytes and decodes them here, because gRPC's own deserializer answers a
// request that does not parse with INTERNAL "Unable to parse request"
// before any of our code runs, and INTERNAL means a server bug (README).
#ifndef COUNTERSD_SERVER_REQUEST_DECODING_H_
#define COUNTERSD_SERVER_REQUEST_DECODING_H_

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "google/protobuf/message.h"
#include "grpcpp/support/byte_buffer.h"

namespace countersd {

// Parses `*request` from `*payload` in place, as gRPC's deserializer does
// (grpc::ProtoBufferReader over the payload's slices, no copy), and clears
// `*payload`. Returns OK, or INVALID_ARGUMENT with ExplainParseFailure's
// message (the payload is copied into one string only then, and handed to
// `failed_bytes` if not null). On failure `*request` holds whatever was
// parsed and must be cleared before reuse.
absl::Status DecodeRequest(grpc::ByteBuffer* payload, google::protobuf::Message* request,
                           std::string* failed_bytes = nullptr);

// The same from contiguous bytes (the fuzz target and unit tests).
absl::Status DecodeRequest(std::string_view bytes, google::protobuf::Message* request);

// Why `bytes` do not parse as a `type` message, always INVALID_ARGUMENT:
//  - a well-formed message whose string field (at any depth) is not valid
//    UTF-8: "<field> must be valid UTF-8 (invalid byte sequence at offset
//    N)", the field named as the API's messages name them: `key`,
//    `increments[3].key`, `keys[2]`, `page_token` (the first such field by
//    field number, then index);
//  - anything else: "request is not a valid <full type name> message".
// REQUIRES: `bytes` do not parse as `type` (on bytes that do, the result is
// the second message). Thread-safe.
absl::Status ExplainParseFailure(std::string_view bytes, const google::protobuf::Descriptor& type);

}  // namespace countersd

#endif  // COUNTERSD_SERVER_REQUEST_DECODING_H_
