// The serving loop of a handler process: every CounterService RPC but
// Snapshot, served from one gRPC completion queue on one thread. See
// unary_call_loop.cc for how it works, and handler_process.cc for why one
// thread and the async API.
#ifndef COUNTERSD_SERVER_UNARY_CALL_LOOP_H_
#define COUNTERSD_SERVER_UNARY_CALL_LOOP_H_

#include "grpcpp/alarm.h"
#include "grpcpp/server_context.h"
#include "server/counter_service.h"

namespace countersd {

class UnaryCallLoop {
 public:
  // REQUIRES: `cq` comes from the builder that registered `service`; both
  // outlive this loop.
  UnaryCallLoop(CounterServiceImpl* service, grpc::ServerCompletionQueue* cq);
  UnaryCallLoop(const UnaryCallLoop&) = delete;
  UnaryCallLoop& operator=(const UnaryCallLoop&) = delete;

  // Serves the async RPCs on the calling thread: keeps requests posted on the
  // queue and runs each call inline when it arrives
  // (CounterServiceImpl::HandleCall). Returns once Stop() has been called and
  // the queue is shut down and drained. Call state is recycled through a
  // free list per method, so a call allocates no state of its own.
  // REQUIRES: exactly one thread calls this, once.
  void Run();

  // Makes Run() shut the queue down, drain it and return. The serving thread
  // shuts the queue down itself, so that it never posts a request on a queue
  // already shut down. Call from another thread, once.
  // REQUIRES: grpc::Server::Shutdown has returned.
  void Stop();

 private:
  CounterServiceImpl* const service_;
  grpc::ServerCompletionQueue* const cq_;
  grpc::Alarm stop_alarm_;  // fires the stop tag on the queue
};

}  // namespace countersd

#endif  // COUNTERSD_SERVER_UNARY_CALL_LOOP_H_
