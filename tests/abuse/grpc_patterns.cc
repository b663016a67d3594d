// How the gRPC floods run (grpc_patterns.h):
//  ListFlood: one thread and one channel (GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL,
//    so one connection each, spread over the handlers by SO_REUSEPORT) per
//    client; each calls List in a closed loop with the previous page's
//    next_page_token ("" after the last page: a new listing), a 60 s
//    deadline per call, until `duration` has passed.
//  WatchFlood: `channels` channels, `watches` async Watch streams spread
//    over them on one client completion queue; each stream's start, then its
//    first Read. Held for `duration` (while the test's canary runs), then
//    every stream's context is cancelled and each Finish collected.
#include "tests/abuse/grpc_patterns.h"

#include <atomic>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "counters/v1/counters.grpc.pb.h"
#include "proto/grpc_deadline.h"
#include "shared/monotonic_time.h"

namespace countersd::testing {
namespace {

using grpc::health::v1::Health;
using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

std::shared_ptr<grpc::Channel> OwnChannel(const std::string& address) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
}

}  // namespace

std::string ListFloodResult::Json() const {
  return absl::StrCat("{\"pattern\": \"list-flood\", \"clients\": ", clients,
                      ", \"pages\": ", pages, ", \"counters\": ", counters,
                      ", \"listings\": ", listings, ", \"errors\": ", errors,
                      ", \"seconds\": ", seconds, "}\n");
}

ListFloodResult ListFlood(const std::string& address, int clients, int page_size,
                          absl::Duration duration) {
  ListFloodResult r;
  r.clients = clients;
  std::atomic<int64_t> pages{0}, counters{0}, listings{0}, errors{0};
  std::mutex mu;
  const absl::Time start = MonotonicNow();
  const absl::Time end = start + duration;
  std::vector<std::thread> threads;
  for (int i = 0; i < clients; ++i) {
    threads.emplace_back([&] {
      auto stub = counters::v1::CounterService::NewStub(OwnChannel(address));
      std::string token;
      while (MonotonicNow() < end) {
        counters::v1::ListRequest req;
        req.set_page_size(page_size);
        req.set_page_token(token);
        counters::v1::ListResponse resp;
        grpc::ClientContext ctx;
        ctx.set_deadline(GrpcDeadlineAfter(absl::Seconds(60)));
        grpc::Status s = stub->List(&ctx, req, &resp);
        if (!s.ok()) {
          if (errors.fetch_add(1) == 0) {
            std::lock_guard<std::mutex> lock(mu);
            r.first_error = absl::StrCat(s.error_code(), ": ", s.error_message());
          }
          continue;
        }
        pages.fetch_add(1);
        counters.fetch_add(resp.counters_size());
        token = resp.next_page_token();
        if (token.empty()) listings.fetch_add(1);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  r.pages = pages.load();
  r.counters = counters.load();
  r.listings = listings.load();
  r.errors = errors.load();
  r.seconds = absl::ToDoubleSeconds(MonotonicNow() - start);
  return r;
}

std::string WatchFloodResult::Json() const {
  return absl::StrCat("{\"pattern\": \"watch-flood\", \"watches\": ", watches,
                      ", \"started\": ", started, ", \"serving\": ", serving,
                      ", \"ended_early\": ", ended_early, ", \"cancelled\": ", cancelled,
                      ", \"open_seconds\": ", open_seconds, ", \"seconds\": ", seconds, "}\n");
}

WatchFloodResult WatchFlood(const std::string& address, int watches, int channels,
                            absl::Duration duration) {
  struct Watch {
    grpc::ClientContext ctx;
    HealthCheckResponse resp;
    grpc::Status status;
    std::unique_ptr<grpc::ClientAsyncReader<HealthCheckResponse>> reader;
    enum { kStarting, kReading, kOpen, kFinishing, kDone } step = kStarting;
  };
  WatchFloodResult r;
  r.watches = watches;
  const absl::Time start = MonotonicNow();
  grpc::CompletionQueue cq;
  std::vector<std::unique_ptr<Health::Stub>> stubs;
  for (int c = 0; c < channels; ++c) stubs.push_back(Health::NewStub(OwnChannel(address)));
  std::vector<std::unique_ptr<Watch>> all;
  for (int i = 0; i < watches; ++i) {
    auto w = std::make_unique<Watch>();
    w->ctx.set_deadline(GrpcDeadlineAfter(duration + absl::Seconds(120)));
    w->reader = stubs[i % channels]->AsyncWatch(&w->ctx, HealthCheckRequest(), &cq, w.get());
    all.push_back(std::move(w));
  }
  // One event at a time; `pending` counts the operations not yet completed.
  int pending = watches;
  auto step = [&](absl::Time until) {
    void* tag;
    bool ok;
    if (cq.AsyncNext(&tag, &ok, GrpcDeadlineAfter(until - MonotonicNow())) != grpc::CompletionQueue::GOT_EVENT) {
      return false;
    }
    --pending;
    Watch* w = static_cast<Watch*>(tag);
    switch (w->step) {
      case Watch::kStarting:
        if (ok) {
          ++r.started;
          w->step = Watch::kReading;
          w->reader->Read(&w->resp, w);
        } else {
          w->step = Watch::kFinishing;
          w->reader->Finish(&w->status, w);
        }
        ++pending;
        break;
      case Watch::kReading:
        if (ok) {
          r.serving += w->resp.status() == HealthCheckResponse::SERVING;
          w->step = Watch::kOpen;
          w->reader->Read(&w->resp, w);  // completes when the stream ends
        } else {
          w->step = Watch::kFinishing;
          w->reader->Finish(&w->status, w);
        }
        ++pending;
        break;
      case Watch::kOpen:  // a later message, or the end
        if (ok) {
          w->reader->Read(&w->resp, w);
        } else {
          w->step = Watch::kFinishing;
          w->reader->Finish(&w->status, w);
        }
        ++pending;
        break;
      case Watch::kFinishing:
        w->step = Watch::kDone;
        if (w->status.error_code() == grpc::StatusCode::CANCELLED) ++r.cancelled;
        break;
      case Watch::kDone:
        break;
    }
    return true;
  };
  // Open: until every stream has its first status (or ended), or a minute.
  const absl::Time open_by = MonotonicNow() + absl::Seconds(60);
  auto opened = [&] {
    int n = 0;
    for (const auto& w : all) n += w->step >= Watch::kOpen;
    return n == watches;
  };
  while (!opened() && step(open_by)) {
  }
  r.open_seconds = absl::ToDoubleSeconds(MonotonicNow() - start);
  // Hold: serve whatever comes (nothing, unless the server ends streams).
  const absl::Time hold_until = MonotonicNow() + duration;
  while (MonotonicNow() < hold_until) step(hold_until);
  for (const auto& w : all) r.ended_early += w->step >= Watch::kFinishing;
  for (const auto& w : all) w->ctx.TryCancel();
  const absl::Time end_by = MonotonicNow() + absl::Seconds(60);
  while (pending > 0 && step(end_by)) {
  }
  cq.Shutdown();
  void* tag;
  bool ok;
  while (cq.Next(&tag, &ok)) {
  }
  r.seconds = absl::ToDoubleSeconds(MonotonicNow() - start);
  return r;
}

}  // namespace countersd::testing
