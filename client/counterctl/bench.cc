// `counterctl bench`: a closed-loop load generator for countersd. This file
// is the verb (its flags, its report); the load itself is bench_load.h
// (CallSlots and the run loop) with its two engines, bench_async.cc and
// bench_callback.cc.
//
// How it works:
//  1. It opens --connections channels. Each has its own subchannel pool
//     (GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL) and a distinct channel argument, so
//     each is its own TCP connection and SO_REUSEPORT spreads them over the
//     daemon's handlers. It waits until every channel is connected.
//  2. Bench::Run keeps --concurrency calls in flight over them, one per
//     CallSlot, each slot re-issuing from the same objects when its call
//     ends, so a call costs no heap allocation of ours. Two gRPC APIs can
//     drive the slots (--api):
//      - async (default): one CompletionQueue per client thread (--threads,
//        default 1); each thread polls its queue, records the finished call
//        and re-issues from the same thread, with no thread hand-off;
//      - callback: each slot is a ClientUnaryReactor; gRPC runs OnDone on its
//        own threads, which re-issue.
//     Either way a slot's calls never overlap, so a slot needs no lock.
//  3. Calls started during the warm-up (--warmup, default 1s) are not counted.
//     The measured window starts when the warm-up ends; a call belongs to it
//     if it started inside it. Issuing stops at the end of --duration or after
//     --requests measured calls, and the run ends when the last call returns.
//     Throughput = successful measured calls / (last completion - window
//     start). Only OK responses count toward throughput and latency; errors
//     are counted by status code and reported.
//  4. Latencies go into each slot's log-linear histogram (1.6% resolution);
//     the histograms are merged at the end for p50/p90/p99/p99.9/max.
//  5. On a terminal (stdout and stderr both a tty) a progress line is
//     refreshed every second on stderr. Ctrl-C stops issuing and reports what
//     was measured so far.
#include <grpc/support/time.h>
#include <grpcpp/channel.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <csignal>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/client.h"
#include "client/counterctl/bench_load.h"
#include "client/counterctl/bench_report.h"
#include "client/counterctl/bench_stream.h"
#include "client/counterctl/cli.h"
#include "client/counterctl/latency_histogram.h"
#include "client/counterctl/output.h"
#include "client/counterctl/verbs.h"
#include "proto/grpc_deadline.h"

namespace countersd::ctl {
namespace {

using Clock = BenchClock;

volatile std::sig_atomic_t g_interrupted = 0;
void OnInterrupt(int) { g_interrupted = 1; }

// Creates each key once (IncrementBatch with delta 0) so that `get` finds them.
absl::Status CreateKeys(const std::shared_ptr<grpc::Channel>& channel, const BenchConfig& config,
                        const std::vector<std::string>& keys) {
  ClientOptions options;
  options.timeout = config.timeout;
  options.bearer_token = config.bearer_token;
  CounterClient client(channel, options);
  constexpr size_t kChunk = 500;
  std::vector<IncrementOp> ops;
  for (size_t i = 0; i < keys.size(); i += kChunk) {
    ops.clear();
    for (size_t k = i; k < std::min(keys.size(), i + kChunk); ++k) ops.push_back({keys[k], 0});
    absl::StatusOr<std::vector<int64_t>> r = client.IncrementBatch(ops);
    if (!r.ok()) return r.status();
  }
  return absl::OkStatus();
}

int RunBench(const Invocation& inv) {
  BenchConfig config;
  config.timeout = inv.timeout;
  config.bearer_token = inv.token;
  const std::string rpc = inv.Flag("rpc", "increment");
  if (rpc == "increment") {
    config.rpc = RpcKind::kIncrement;
  } else if (rpc == "batch") {
    config.rpc = RpcKind::kBatch;
  } else if (rpc == "stream") {
    config.rpc = RpcKind::kStream;
  } else if (rpc == "accumulate") {
    config.rpc = RpcKind::kAccumulate;
    config.threads = 2;
  } else {  // the parser allows only the choices of --rpc
    config.rpc = RpcKind::kGet;
  }
  struct IntFlag {
    absl::string_view name;
    int64_t max;
    int64_t* out;
  };
  for (const IntFlag& f :
       {IntFlag{"keys", 100'000'000, &config.keys}, IntFlag{"batch", 1'000'000, &config.batch},
        IntFlag{"connections", 4096, &config.connections},
        IntFlag{"concurrency", 100'000, &config.concurrency},
        IntFlag{"requests", int64_t{1} << 62, &config.requests},
        IntFlag{"threads", 256, &config.threads}, IntFlag{"streams", 4096, &config.streams},
        IntFlag{"window", 4096, &config.window}}) {
    if (!inv.Has(f.name)) continue;
    absl::StatusOr<int64_t> v = ParsePositiveFlag(inv.Flag(f.name), f.name, f.max);
    if (!v.ok()) return UsageError(inv, v.status().message());
    *f.out = *v;
  }
  if (inv.Has("duration")) {
    absl::StatusOr<absl::Duration> d = ParseDurationArg(inv.Flag("duration"), "--duration");
    if (!d.ok()) return UsageError(inv, d.status().message());
    config.duration = *d;
  } else if (config.requests == 0) {
    config.duration = absl::Seconds(10);
  }
  if (inv.Has("flush-interval")) {
    if (config.rpc != RpcKind::kAccumulate) {
      return UsageError(inv, "--flush-interval applies to --rpc=accumulate only");
    }
    absl::StatusOr<absl::Duration> d =
        ParseDurationArg(inv.Flag("flush-interval"), "--flush-interval");
    if (!d.ok()) return UsageError(inv, d.status().message());
    config.flush_interval = *d;
  }
  const bool stream_load = config.rpc == RpcKind::kStream || config.rpc == RpcKind::kAccumulate;
  if (!stream_load && (inv.Has("streams") || inv.Has("window"))) {
    return UsageError(inv,
                      "--streams and --window apply to --rpc=stream and --rpc=accumulate only");
  }
  if (config.rpc == RpcKind::kAccumulate && inv.Has("streams")) {
    return UsageError(inv, "--streams applies to --rpc=stream only (accumulate uses one stream)");
  }
  if (inv.Has("warmup")) {
    if (inv.Flag("warmup") == "0") {
      config.warmup = absl::ZeroDuration();
    } else {
      absl::StatusOr<absl::Duration> d = ParseDurationArg(inv.Flag("warmup"), "--warmup");
      if (!d.ok()) return UsageError(inv, d.status().message());
      config.warmup = *d;
    }
  }
  const std::string api = inv.Flag("api", "async");
  if (api == "async") {
    config.engine = Engine::kAsync;
  } else {  // callback, the other choice of --api
    config.engine = Engine::kCallback;
    if (inv.Has("threads") && config.rpc != RpcKind::kAccumulate) {
      return UsageError(inv, "--threads applies to --api=async and --rpc=accumulate only");
    }
  }
  if (stream_load && inv.Has("api")) {
    return UsageError(inv, "--api applies to the unary loads (increment, batch, get) only");
  }
  if (config.rpc != RpcKind::kBatch && config.rpc != RpcKind::kStream) config.batch = 1;
  if (stream_load && (inv.Has("requests") || inv.Has("concurrency"))) {
    return UsageError(inv,
                      "--requests and --concurrency apply to the unary loads only "
                      "(stream: --streams and --window; both run for --duration)");
  }
  config.session = inv.Flag("session", "off") == "on";
  config.durable = inv.Flag("durable", "off") == "on";
  if (config.session && config.rpc != RpcKind::kIncrement && config.rpc != RpcKind::kBatch) {
    return UsageError(inv, "--session applies to --rpc=increment and batch only");
  }
  if (config.durable && config.rpc != RpcKind::kIncrement && config.rpc != RpcKind::kBatch &&
      config.rpc != RpcKind::kStream) {
    return UsageError(inv, "--durable applies to --rpc=increment, batch and stream only");
  }
  config.key_prefix = inv.Flag("key-prefix", config.key_prefix);
  if (absl::Status s = CheckKeyArg(absl::StrCat(config.key_prefix, config.keys - 1)); !s.ok()) {
    return UsageError(inv, absl::StrCat("--key-prefix gives bad keys: ", s.message()));
  }
  config.connections =
      std::min(config.connections, config.rpc == RpcKind::kStream       ? config.streams
                                   : config.rpc == RpcKind::kAccumulate ? 1
                                                                        : config.concurrency);

  if (const std::string refusal = AttachRefusal(inv); !refusal.empty()) {
    return UsageError(inv, refusal);
  }
  // Connect every channel first, so that connection set-up is not measured
  // and an unreachable daemon is reported clearly.
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  const gpr_timespec connect_deadline = GrpcDeadlineAfter(inv.timeout);
  for (int64_t c = 0; c < config.connections; ++c) {
    grpc::ChannelArguments args;
    // Not GRPC_ARG_MINIMAL_STACK: it cut this driver's CPU per call by a
    // quarter, but without its deadline filter a call's --timeout no longer
    // fires, and a bench against a stuck server hung (docs/benchmarks.md).
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetInt("countersd.bench_connection", static_cast<int>(c));
    absl::StatusOr<std::shared_ptr<grpc::Channel>> opened = OpenChannel(inv, args);
    if (!opened.ok()) return ReportError(inv, opened.status());
    std::shared_ptr<grpc::Channel> channel = *std::move(opened);
    if (!channel->WaitForConnected(connect_deadline)) {
      return ReportError(inv, absl::UnavailableError(absl::StrCat(
                                  "connection ", c + 1, " of ", config.connections,
                                  " did not connect within ", absl::FormatDuration(inv.timeout))));
    }
    channels.push_back(std::move(channel));
  }

  if (stream_load) {
    g_interrupted = 0;
    struct sigaction sa = {}, old_sa = {};
    sa.sa_handler = OnInterrupt;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_sa);
    const int code = config.rpc == RpcKind::kStream
                         ? RunStreamLoad(inv, config, channels, &g_interrupted)
                         : RunAccumulateLoad(inv, config, channels, &g_interrupted);
    sigaction(SIGINT, &old_sa, nullptr);
    return code;
  }

  Bench bench(config);
  if (config.rpc == RpcKind::kGet) {
    if (absl::Status s = CreateKeys(channels[0], config, bench.keys()); !s.ok()) {
      return ReportError(inv, s);
    }
  }
  const bool progress = isatty(STDOUT_FILENO) && isatty(STDERR_FILENO);
  g_interrupted = 0;
  struct sigaction sa = {}, old_sa = {};
  sa.sa_handler = OnInterrupt;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &old_sa);
  bench.Run(channels, progress, &g_interrupted);
  sigaction(SIGINT, &old_sa, nullptr);

  // Merge the slots' results.
  LatencyHistogram histogram;
  uint64_t ok = 0, errors = 0;
  CodeCounts by_code{};
  std::string first_error;
  Clock::time_point last_done = bench.window_start();
  for (auto& s : bench.slots()) {
    histogram.Merge(s->histogram);
    ok += s->ok;
    for (size_t c = 0; c < by_code.size(); ++c) {
      by_code[c] += s->errors_by_code[c];
      errors += s->errors_by_code[c];
    }
    if (first_error.empty()) first_error = s->first_error;
    last_done = std::max(last_done, s->last_done);
  }
  const double elapsed = std::chrono::duration<double>(last_done - bench.window_start()).count();
  const double calls_per_s = elapsed > 0 ? ok / elapsed : 0.0;
  const double ops_per_s = calls_per_s * static_cast<double>(config.batch);

  if (inv.json()) {
    JsonWriter j;
    j.BeginObject().Field("rpc", RpcName(config.rpc)).Field("address", inv.address);
    j.Field("api", config.engine == Engine::kAsync ? "async" : "callback");
    j.Field("threads", config.engine == Engine::kAsync ? config.threads : int64_t{0});
    j.Field("keys", config.keys).Field("batch", config.batch);
    j.Field("connections", config.connections).Field("concurrency", config.concurrency);
    j.Field("warmup_seconds", absl::ToDoubleSeconds(config.warmup));
    j.Field("elapsed_seconds", elapsed).Field("interrupted", g_interrupted != 0);
    j.Field("ok", ok).Field("errors", errors);
    WriteCodeCountsJson("errors_by_code", by_code, j);
    if (!first_error.empty()) j.Field("first_error", first_error);
    j.Field("calls_per_second", calls_per_s).Field("ops_per_second", ops_per_s);
    WriteLatencyJson(histogram, j);
    j.EndObject();
    PrintData(j.str() + "\n");
  } else {
    std::vector<std::vector<std::string>> rows = {
        {"rpc",
         config.rpc == RpcKind::kBatch
             ? absl::StrCat("batch (IncrementBatch of ", config.batch, ")")
             : std::string(config.rpc == RpcKind::kGet ? "get (Get)" : "increment (Increment)")},
        {"target",
         absl::StrCat(inv.address, ", ", config.connections, " connections, ", config.concurrency,
                      " calls in flight, ", WithThousands(config.keys), " keys")},
        {"client", config.engine == Engine::kAsync
                       ? absl::StrCat("gRPC async API, ", config.threads,
                                      config.threads == 1 ? " thread" : " threads")
                       : std::string("gRPC callback API")},
        {"measured",
         absl::StrFormat("%.2f s after %s warm-up%s", elapsed, absl::FormatDuration(config.warmup),
                         g_interrupted ? " (interrupted)" : "")},
        {"calls", absl::StrCat(WithThousands(ok), " ok, ", WithThousands(errors), " errors")},
        {"throughput", absl::StrCat(WithThousands(static_cast<uint64_t>(calls_per_s)), " calls/s")},
    };
    if (config.rpc == RpcKind::kBatch) {
      rows.push_back(
          {"increments", absl::StrCat(WithThousands(static_cast<uint64_t>(ops_per_s)), "/s")});
    }
    rows.push_back({"latency", LatencyLine(histogram)});
    AddCodeRows("errors", by_code, &rows);
    if (!first_error.empty()) rows.push_back({"first error", first_error});
    PrintData(FormatColumns(rows));
  }
  if (ok == 0) {
    PrintMessage(inv, first_error.empty() ? "no call completed in the measured window"
                                          : absl::StrCat("every call failed: ", first_error));
    return kExitError;
  }
  if (errors > 0) {
    PrintMessage(inv, absl::StrCat(errors, " calls failed; first: ", first_error));
    return kExitError;
  }
  return kExitOk;
}

}  // namespace

VerbSpec BenchVerb() {
  return {
      "bench",
      "",
      "load-test the daemon; print throughput and latency percentiles",
      "Drives countersd with --concurrency calls in flight over --connections\n"
      "separate TCP connections, one reusable call object per call in flight, and\n"
      "prints throughput and p50/p90/p99/max latency of the\n"
      "successful calls. Calls started during --warmup are not counted. Stops after\n"
      "--duration or --requests measured calls, whichever comes first (10s when\n"
      "neither is given; with --requests alone, when they are done).\n"
      "Keys are drawn uniformly from KEY_PREFIX0 .. KEY_PREFIX{N-1}; `get` creates\n"
      "them first. A progress line is shown when stdout and stderr are a terminal;\n"
      "Ctrl-C stops early and reports. Exits 1 if any call failed.\n"
      "\n"
      "Engines (--api): async, the default, drives the calls from --threads threads\n"
      "each polling its own gRPC completion queue; callback uses gRPC's callback\n"
      "API (a reactor per call in flight, run on gRPC's threads).\n"
      "\n"
      "--rpc=stream keeps --streams IncrementStreams open (one connection each, up\n"
      "to --connections), each sending messages of --batch increments as fast as\n"
      "its --window of unanswered messages allows; it reports messages/s,\n"
      "increments/s and each message's latency from send to answer.\n"
      "--rpc=accumulate runs --threads threads calling Accumulator::Add(key, 1) for\n"
      "--duration (no warm-up), flushed every --flush-interval over one stream;\n"
      "it reports Add calls/s and the increments the daemon acknowledged per\n"
      "second, then reads every key back (BatchGet) and fails unless each moved by\n"
      "exactly what was added.\n"
      "\n"
      "Examples:\n"
      "  counterctl bench --rpc=increment --concurrency=64 --connections=8 --duration=10s\n"
      "  counterctl bench --rpc=increment --concurrency=1 --connections=1\n"
      "  counterctl bench --rpc=batch --batch=100 --output=json\n"
      "  counterctl bench --rpc=stream --streams=4 --batch=1000 --duration=10s\n"
      "  counterctl bench --rpc=accumulate --threads=2 --keys=10000 --duration=10s\n"
      "\n"
      "JSON: {\"rpc\":..,\"ok\":..,\"errors\":..,\"errors_by_code\":{..},\"elapsed_seconds\":..,\n"
      "       \"calls_per_second\":..,\"ops_per_second\":..,\n"
      "       "
      "\"latency_us\":{\"p50\":..,\"p90\":..,\"p99\":..,\"p999\":..,\"max\":..,\"mean\":..},...}\n",
      {
          {"rpc", "increment|batch|get|stream|accumulate",
           "increment (default), batch (IncrementBatch), get, stream (IncrementStream) or "
           "accumulate (Accumulator::Add)"},
          {"keys", "N", "number of distinct keys (default 1000)"},
          {"batch", "N", "increments per IncrementBatch call or stream message (default 100)"},
          {"connections", "C", "separate channels/TCP connections (default 8)"},
          {"concurrency", "K", "calls in flight in total (default 64)"},
          {"duration", "DURATION", "measured time (default 10s unless --requests)"},
          {"requests", "N", "stop after N measured calls"},
          {"warmup", "DURATION", "unmeasured warm-up before the window (default 1s; 0: none)"},
          {"key-prefix", "PREFIX", "key prefix (default \"bench:\")"},
          {"api", "async|callback", "async (default: completion queues) or callback (reactors)"},
          {"threads", "N",
           "client threads polling completion queues, --api=async (default 1); "
           "accumulate: threads calling Add (default 2)"},
          {"streams", "N", "stream: IncrementStreams at once (default 4)"},
          {"window", "N", "stream, accumulate: unanswered messages per stream (default 16)"},
          {"flush-interval", "DURATION",
           "accumulate: the Accumulator's flush interval (default 100ms)"},
          {"session", "on|off",
           "increment, batch: every write under an exactly-once session, one per call slot "
           "(WriteOptions; default off)"},
          {"durable", "on|off",
           "increment, batch, stream: durable writes (each call or message), answered once "
           "synced (WriteOptions; default off)"},
      },
      0,
      0,
      kDaemonGroup,
      RunBench};
}

}  // namespace countersd::ctl
