// Request decoding, and the lenient twin that explains a failed parse.
//
// How it works:
//  1. The hot path is gRPC's own: a grpc::ProtoBufferReader over the
//     payload's slices and Message::ParseFromZeroCopyStream into the call's
//     reused request message (what grpc::SerializationTraits::Deserialize
//     does, but keeping the payload until we know the parse worked, since
//     gRPC's version clears it either way). Nothing below runs for a request
//     that parses.
//  2. A proto3 parser fails on two kinds of input: bytes that are not a
//     well-formed protobuf message, and a well-formed message with a
//     `string` field that is not valid UTF-8 (proto3 requires it; protobuf
//     logs an ERROR line naming the field). To tell them apart, the bytes are
//     parsed again as the request type's lenient twin: the same message with
//     every `string` field turned into `bytes`, which no UTF-8 rule applies
//     to. If the twin does not parse either, the message is malformed
//     ("request is not a valid counters.v1.<Type> message").
//  3. If the twin parses, its fields are walked by reflection, in field
//     number order and then by index, recursing into sub-messages, and the
//     first field that is `string` in the typed message, in a proto3 file,
//     and not valid UTF-8 is named as the API's other errors name fields
//     (`increments[1].key`, `keys[2]`), with ValidateKey's wording
//     (shared/key.h): "key must be valid UTF-8 (invalid byte sequence at
//     offset N)". The test is protobuf's own (UTF8SpnStructurallyValid, the
//     length of the valid prefix: the predicate the parser applied), so the
//     walk finds the field the parser rejected. Found none (a parse that
//     failed for another reason): the malformed-message answer.
//  The twins are built at run time, once, from the compiled-in descriptors
//  of the typed messages (FileDescriptor::CopyTo, `string` -> `bytes`,
//  DescriptorPool::BuildFile into a private pool, DynamicMessageFactory), so
//  counters.proto stays their one source of truth with no build step and no
//  generated code, and any request type (of any file) has one. A build-time
//  twin (counters.proto rewritten by CMake and compiled) would parse faster,
//  but this runs only for requests that are rejected anyway, and a dynamic
//  message parses with the same protobuf parser.
#include "server/request_decoding.h"

#include <climits>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"
#include "google/protobuf/dynamic_message.h"
#include "google/protobuf/stubs/common.h"
#include "grpcpp/support/proto_buffer_reader.h"

namespace countersd {
namespace {

namespace pb = google::protobuf;

// The lenient twins of every message type asked for, in a private pool.
class LenientTwins {
 public:
  // The twin prototype of `type`, or null if its file could not be rebuilt
  // (it then has no explanation beyond "not a valid message").
  const pb::Message* Prototype(const pb::Descriptor& type) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!Add(*type.file())) return nullptr;
    const pb::Descriptor* twin = pool_.FindMessageTypeByName(type.full_name());
    return twin == nullptr ? nullptr : factory_.GetPrototype(twin);
  }

 private:
  // Adds the twin of `file` (and of its dependencies) unless it is there.
  bool Add(const pb::FileDescriptor& file) {
    if (pool_.FindFileByName(file.name()) != nullptr) return true;
    for (int i = 0; i < file.dependency_count(); ++i) {
      if (!Add(*file.dependency(i))) return false;
    }
    pb::FileDescriptorProto proto;
    file.CopyTo(&proto);
    for (pb::DescriptorProto& message : *proto.mutable_message_type()) Loosen(&message);
    return pool_.BuildFile(proto) != nullptr;
  }

  // `string` -> `bytes` in `message` and its nested types. A map's entry
  // becomes a plain nested message (same wire format), since a map key may
  // not be `bytes`; a `string` default is dropped (it does not affect
  // parsing, and `bytes` defaults are C-escaped).
  static void Loosen(pb::DescriptorProto* message) {
    if (message->has_options()) message->mutable_options()->clear_map_entry();
    for (pb::FieldDescriptorProto& field : *message->mutable_field()) {
      if (field.type() == pb::FieldDescriptorProto::TYPE_STRING) {
        field.set_type(pb::FieldDescriptorProto::TYPE_BYTES);
        field.clear_default_value();
      }
    }
    for (pb::DescriptorProto& nested : *message->mutable_nested_type()) Loosen(&nested);
  }

  std::mutex mu_;
  pb::DescriptorPool pool_;                 // guarded by mu_
  pb::DynamicMessageFactory factory_{&pool_};  // thread-safe itself
};

LenientTwins& Twins() {
  static LenientTwins* const twins = new LenientTwins;  // never destroyed: prototypes live on
  return *twins;
}

// The first invalid UTF-8 in a field (its API name and the offset).
struct BadField {
  std::string name;
  int offset;
};

// Checks one value of a field that is `string` in the typed message.
std::optional<BadField> CheckUtf8(const std::string& value, std::string name) {
  const int valid = pb::internal::UTF8SpnStructurallyValid(value);
  if (static_cast<size_t>(valid) == value.size()) return std::nullopt;
  return BadField{std::move(name), valid};
}

// The first field of `twin` (a parsed lenient twin of `typed`) that is a
// proto3 `string` in `typed` and not valid UTF-8; `prefix` names `twin`.
std::optional<BadField> FindNonUtf8(const pb::Message& twin, const pb::Descriptor& typed,
                                    const std::string& prefix) {
  const pb::Reflection* r = twin.GetReflection();
  std::vector<const pb::FieldDescriptor*> fields;
  r->ListFields(twin, &fields);  // the fields present, by field number
  std::string scratch;
  for (const pb::FieldDescriptor* f : fields) {
    const pb::FieldDescriptor* tf = typed.FindFieldByNumber(f->number());
    if (tf == nullptr) continue;
    const std::string name = prefix.empty() ? f->name() : absl::StrCat(prefix, ".", f->name());
    const auto indexed = [&](int i) { return absl::StrCat(name, "[", i, "]"); };
    std::optional<BadField> bad;
    if (tf->type() == pb::FieldDescriptor::TYPE_STRING &&
        tf->file()->syntax() == pb::FileDescriptor::SYNTAX_PROTO3) {
      if (f->is_repeated()) {
        for (int i = 0, n = r->FieldSize(twin, f); i < n && !bad; ++i) {
          bad = CheckUtf8(r->GetRepeatedStringReference(twin, f, i, &scratch), indexed(i));
        }
      } else {
        bad = CheckUtf8(r->GetStringReference(twin, f, &scratch), name);
      }
    } else if (tf->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE &&
               f->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE) {
      if (f->is_repeated()) {
        for (int i = 0, n = r->FieldSize(twin, f); i < n && !bad; ++i) {
          bad = FindNonUtf8(r->GetRepeatedMessage(twin, f, i), *tf->message_type(), indexed(i));
        }
      } else {
        bad = FindNonUtf8(r->GetMessage(twin, f), *tf->message_type(), name);
      }
    }
    if (bad) return bad;
  }
  return std::nullopt;
}

absl::Status NotAValidMessage(const pb::Descriptor& type) {
  return absl::InvalidArgumentError(
      absl::StrCat("request is not a valid ", type.full_name(), " message"));
}

}  // namespace

absl::Status DecodeRequest(grpc::ByteBuffer* payload, pb::Message* request,
                           std::string* failed_bytes) {
  bool parsed;
  {
    grpc::ProtoBufferReader reader(payload);
    parsed = reader.status().ok() && request->ParseFromZeroCopyStream(&reader);
  }
  if (parsed) {
    payload->Clear();
    return absl::OkStatus();
  }
  std::string bytes;
  std::vector<grpc::Slice> slices;
  if (payload->Dump(&slices).ok()) {
    for (const grpc::Slice& s : slices) {
      bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
    }
  }
  payload->Clear();
  absl::Status explained = ExplainParseFailure(bytes, *request->GetDescriptor());
  if (failed_bytes != nullptr) *failed_bytes = std::move(bytes);
  return explained;
}

absl::Status DecodeRequest(std::string_view bytes, pb::Message* request) {
  if (bytes.size() <= INT_MAX &&
      request->ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return absl::OkStatus();
  }
  return ExplainParseFailure(bytes, *request->GetDescriptor());
}

absl::Status ExplainParseFailure(std::string_view bytes, const pb::Descriptor& type) {
  const pb::Message* prototype = Twins().Prototype(type);
  if (prototype == nullptr || bytes.size() > INT_MAX) return NotAValidMessage(type);
  std::unique_ptr<pb::Message> twin(prototype->New());
  if (!twin->ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return NotAValidMessage(type);
  }
  std::optional<BadField> bad = FindNonUtf8(*twin, type, "");
  if (!bad) return NotAValidMessage(type);
  return absl::InvalidArgumentError(absl::StrCat(
      bad->name, " must be valid UTF-8 (invalid byte sequence at offset ", bad->offset, ")"));
}

}  // namespace countersd
