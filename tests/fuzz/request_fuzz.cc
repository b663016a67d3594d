// Fuzz target: the request path of a handler, through the gRPC-free
// request decoding (server/request_decoding.h, what the serving loop runs on
// a request's bytes) and CounterService methods (server/counter_service.h)
// on a real table.
//
// Input: byte 0 picks the method (Increment, IncrementBatch, Get, BatchGet,
// List, Set, CompareAndSet, Delete, GetStats, and one IncrementStream
// message); the rest is the serialized request. Bytes that do not decode are answered by DecodeRequest itself
// (the lenient twin that names a non-UTF-8 field or the type), and the
// method then does not run, as in the serving loop.
// Invariants: no crash or sanitizer report; a request that does not decode
// gets INVALID_ARGUMENT with a message; and no INTERNAL or UNKNOWN status
// from a method: those mean a server bug (README, error codes); every bad
// request gets a status that names what is wrong.
#include <stdlib.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "counters/v1/counters.pb.h"
#include "server/counter_service.h"
#include "server/request_decoding.h"
#include "shared/counter_table.h"

namespace {

namespace v1 = counters::v1;
using countersd::CounterServiceImpl;

struct Fixture {
  std::unique_ptr<countersd::CounterTable> table;
  std::unique_ptr<CounterServiceImpl> service;
};

Fixture& TheFixture() {
  static Fixture* f = [] {
    auto* fx = new Fixture;
    std::string tmpl =
        (std::filesystem::temp_directory_path() / "countersd-fuzz-request-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) std::abort();
    auto t = countersd::CounterTable::Create(tmpl + "/counters.map", 1000);
    if (!t.ok()) std::abort();
    fx->table = std::move(*t);
    fx->service = std::make_unique<CounterServiceImpl>(fx->table.get(), /*max_batch=*/100);
    return fx;
  }();
  return *f;
}

template <typename Request, typename Response>
void Run(absl::Status (CounterServiceImpl::*method)(const Request&, Response*), const uint8_t* data,
         size_t size) {
  Request req;
  const absl::Status decoded =
      countersd::DecodeRequest(std::string_view(reinterpret_cast<const char*>(data), size), &req);
  if (!decoded.ok()) {
    if (!absl::IsInvalidArgument(decoded) || decoded.message().empty()) std::abort();
    return;
  }
  Response resp;
  const absl::Status st = (TheFixture().service.get()->*method)(req, &resp);
  if (absl::IsInternal(st) || absl::IsUnknown(st)) std::abort();  // a server bug
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t* msg = data + 1;
  const size_t n = size - 1;
  switch (data[0] % 10) {
    case 0: Run(&CounterServiceImpl::DoIncrement, msg, n); break;
    case 1: Run(&CounterServiceImpl::DoIncrementBatch, msg, n); break;
    case 2: Run(&CounterServiceImpl::DoGet, msg, n); break;
    case 3: Run(&CounterServiceImpl::DoBatchGet, msg, n); break;
    case 4: Run(&CounterServiceImpl::DoList, msg, n); break;
    case 5: Run(&CounterServiceImpl::DoSet, msg, n); break;
    case 6: Run(&CounterServiceImpl::DoCompareAndSet, msg, n); break;
    case 7: Run(&CounterServiceImpl::DoDelete, msg, n); break;
    case 8: Run(&CounterServiceImpl::DoGetStats, msg, n); break;
    case 9: Run(&CounterServiceImpl::DoIncrementStream, msg, n); break;
  }
  return 0;
}
