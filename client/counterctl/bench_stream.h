// The two loads of `counterctl bench` that are not unary calls, each in its
// own file: --rpc=stream (bench_stream.cc: IncrementStreams driven
// directly) and --rpc=accumulate (bench_accumulate.cc: application threads
// calling Accumulator::Add). bench.cc parses the flags and connects the
// channels, then calls one of these, which runs the load, prints the report
// and returns the exit code.
#ifndef COUNTERSD_CLIENT_COUNTERCTL_BENCH_STREAM_H_
#define COUNTERSD_CLIENT_COUNTERCTL_BENCH_STREAM_H_

#include <grpcpp/channel.h>

#include <csignal>
#include <memory>
#include <vector>

#include "client/counterctl/bench_load.h"
#include "client/counterctl/cli.h"

namespace countersd::ctl {

// config.streams IncrementStreams, stream i on channels[i % size], each
// sending messages of config.batch increments of 1 to uniformly drawn keys
// as fast as its window allows. Messages sent after the warm-up and before
// the end of --duration are measured. Exit 1 if a measured message failed
// or none was answered.
int RunStreamLoad(const Invocation& inv, const BenchConfig& config,
                  const std::vector<std::shared_ptr<grpc::Channel>>& channels,
                  const volatile std::sig_atomic_t* interrupted);

// config.threads threads calling Accumulator::Add(key, 1) on uniformly
// drawn keys for --duration, one Accumulator over channels[0] flushing
// every config.flush_interval; then Flush, and a read-back (BatchGet) that
// the daemon's values moved by exactly the sums added. Exit 1 if they did
// not, or if any add or message failed or was left unknown.
int RunAccumulateLoad(const Invocation& inv, const BenchConfig& config,
                      const std::vector<std::shared_ptr<grpc::Channel>>& channels,
                      const volatile std::sig_atomic_t* interrupted);

}  // namespace countersd::ctl

#endif  // COUNTERSD_CLIENT_COUNTERCTL_BENCH_STREAM_H_
