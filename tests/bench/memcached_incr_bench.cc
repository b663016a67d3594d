// memcached_incr_bench: a closed-loop load generator of memcached `incr`
// commands (text protocol), the memcached column of tests/bench/run.sh.
//
//   memcached_incr_bench --port=11211 --connections=64 --pipeline=1
//                        --keys=10000 --duration=5 --warmup=1
//
// How it works, and why it is a fair peer of redis-benchmark and
// `counterctl bench`:
//  1. It first creates the keys key:0 .. key:N-1 with value 0 (`set ...
//     noreply`, sent in large writes on one connection, then a `version`
//     round trip to know they were applied): memcached's `incr` fails with
//     NOT_FOUND on a missing key, unlike Redis INCRBY and countersd Increment.
//  2. One thread, one epoll loop, non-blocking sockets with TCP_NODELAY, like
//     redis-benchmark. Each of --connections connections keeps one round trip
//     in flight: it writes --pipeline `incr key:R 1` commands (R uniform in
//     [0, N), a fresh draw per command) in one write, reads until it has that
//     many reply lines, records the round trip's latency, and starts the next.
//     With --pipeline=1 that is the unary workload; with --pipeline=100 it is
//     the batched one (memcached has no multi-key incr, so pipelining is the
//     best it can do, as with redis-benchmark -P 100).
//  3. Round trips started during --warmup are not measured. No round trip
//     starts after warm-up + --duration; the run ends when the last returns.
//     Throughput = measured increments / (last completion - window start).
//  4. A reply that is not a number (NOT_FOUND, CLIENT_ERROR, SERVER_ERROR,
//     ERROR) is an error; any error makes the exit status 1. Latency
//     percentiles are exact (every round trip's latency is kept; at most
//     --max-samples of them, then every later one is dropped and counted).
//  5. Output: one JSON object on stdout with the same field names as
//     `counterctl bench --output=json` (ops_per_second, calls_per_second,
//     latency_us.p50/p90/p99/max).
// It only connects to the address given; run.sh gives it 127.0.0.1.
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "tests/tool_flags.h"

namespace {

uint64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ULL + static_cast<uint64_t>(ts.tv_nsec);
}

[[noreturn]] void Die(const char* what) {
  std::fprintf(stderr, "memcached_incr_bench: %s: %s\n", what, std::strerror(errno));
  std::exit(1);
}

struct Options {
  std::string host = "127.0.0.1";
  int port = 0;
  int connections = 64;
  int pipeline = 1;
  int64_t keys = 10000;
  double duration = 5;
  double warmup = 1;
  std::string key_prefix = "key:";
  size_t max_samples = 20'000'000;
};

Options ParseOptions(int argc, char** argv) {
  Options o;
  countersd::testing::ToolFlags flags(
      "memcached_incr_bench",
      "Closed-loop load of memcached `incr` commands (text protocol); prints one JSON\n"
      "object with the field names of `counterctl bench --output=json`.");
  flags.Required("port", &o.port, "P", "memcached's port (1..65535)");
  flags.Add("host", &o.host, "IPV4", "memcached's address");
  flags.Add("connections", &o.connections, "C",
            "connections, one round trip in flight each (1..10000)");
  flags.Add("pipeline", &o.pipeline, "N", "incr commands per round trip (1..100000)");
  flags.Add("keys", &o.keys, "N", "distinct keys KEY_PREFIX0 .. KEY_PREFIX{N-1}");
  flags.Add("duration", &o.duration, "SECONDS", "measured time");
  flags.Add("warmup", &o.warmup, "SECONDS", "unmeasured warm-up before it");
  flags.Add("key-prefix", &o.key_prefix, "PREFIX", "key prefix");
  flags.Add("max-samples", &o.max_samples, "N",
            "latencies kept; later ones are dropped and counted");
  flags.Parse(argc, argv);
  if (o.port <= 0 || o.port > 65535) flags.Fail("--port must be 1..65535");
  if (o.connections < 1 || o.connections > 10000) flags.Fail("--connections must be 1..10000");
  if (o.pipeline < 1 || o.pipeline > 100000) flags.Fail("--pipeline must be 1..100000");
  if (o.keys < 1) flags.Fail("--keys must be >= 1");
  if (o.duration <= 0) flags.Fail("--duration must be > 0");
  if (o.warmup < 0) flags.Fail("--warmup must be >= 0");
  if (in_addr a; inet_pton(AF_INET, o.host.c_str(), &a) != 1) {
    flags.Fail("--host must be an IPv4 address");
  }
  return o;
}

int Connect(const Options& o) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) Die("socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(o.port));
  inet_pton(AF_INET, o.host.c_str(), &addr.sin_addr);  // checked by ParseOptions
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) Die("connect");
  int one = 1;
  if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0)
    Die("setsockopt(TCP_NODELAY)");
  return fd;
}

void WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      Die("write");
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
}

// Blocking: reads until `want` is seen at the end of what was read.
void ReadUntil(int fd, std::string_view want) {
  std::string got;
  char buf[4096];
  while (got.size() < want.size() ||
         got.compare(got.size() - want.size(), want.size(), want) != 0) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      Die("read");
    }
    if (n == 0) {
      errno = ECONNRESET;
      Die("read (connection closed while creating keys)");
    }
    got.append(buf, static_cast<size_t>(n));
  }
  if (got.find("ERROR") != std::string::npos) {
    std::fprintf(stderr, "memcached_incr_bench: creating keys failed: %s\n", got.c_str());
    std::exit(1);
  }
}

void CreateKeys(const Options& o, const std::vector<std::string>& keys) {
  int fd = Connect(o);
  std::string out;
  for (size_t i = 0; i < keys.size(); ++i) {
    out += "set ";
    out += keys[i];
    out += " 0 0 1 noreply\r\n0\r\n";
    if (out.size() > (1 << 16) || i + 1 == keys.size()) {
      WriteAll(fd, out);
      out.clear();
    }
  }
  WriteAll(fd, "version\r\n");
  ReadUntil(fd, "\r\n");
  close(fd);
}

struct Connection {
  int fd = -1;
  std::string out;  // the round trip being written
  size_t written = 0;
  char in[1 << 16];  // unparsed reply bytes
  size_t in_len = 0;
  int replies_left = 0;  // reply lines still expected for this round trip
  uint64_t started = 0;
  bool measured = false;
  bool active = false;  // a round trip is in flight
  bool watching_out = false;
};

class Driver {
 public:
  explicit Driver(const Options& o) : o_(o), rng_(NowNs() | 1) {
    keys_.reserve(static_cast<size_t>(o.keys));
    for (int64_t i = 0; i < o.keys; ++i) keys_.push_back(o.key_prefix + std::to_string(i));
  }

  const std::vector<std::string>& keys() const { return keys_; }

  int Run() {
    epfd_ = epoll_create1(0);
    if (epfd_ < 0) Die("epoll_create1");
    conns_.resize(static_cast<size_t>(o_.connections));
    for (Connection& c : conns_) {
      c.fd = Connect(o_);
      if (fcntl(c.fd, F_SETFL, fcntl(c.fd, F_GETFL) | O_NONBLOCK) != 0) Die("fcntl(O_NONBLOCK)");
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.ptr = &c;
      if (epoll_ctl(epfd_, EPOLL_CTL_ADD, c.fd, &ev) != 0) Die("epoll_ctl");
      c.out.reserve(static_cast<size_t>(o_.pipeline) * 32);
    }
    samples_.reserve(std::min<size_t>(o_.max_samples, 1 << 20));
    const uint64_t start = NowNs();
    window_start_ = start + static_cast<uint64_t>(o_.warmup * 1e9);
    window_end_ = window_start_ + static_cast<uint64_t>(o_.duration * 1e9);
    last_done_ = window_start_;
    for (Connection& c : conns_) Issue(c, start);

    std::vector<epoll_event> events(conns_.size());
    while (active_ > 0) {
      int n = epoll_wait(epfd_, events.data(), static_cast<int>(events.size()), 1000);
      if (n < 0) {
        if (errno == EINTR) continue;
        Die("epoll_wait");
      }
      for (int i = 0; i < n; ++i) {
        Connection& c = *static_cast<Connection*>(events[i].data.ptr);
        if (events[i].events & EPOLLOUT) Flush(c);
        if (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) Read(c);
      }
      if (NowNs() > window_end_ + 30'000'000'000ULL) {
        std::fprintf(stderr,
                     "memcached_incr_bench: %d round trips still in flight 30s after the end\n",
                     active_);
        return 1;
      }
    }
    return Report();
  }

 private:
  const std::string& NextKey() {
    rng_ ^= rng_ >> 12;
    rng_ ^= rng_ << 25;
    rng_ ^= rng_ >> 27;
    const uint64_t r = rng_ * 0x2545F4914F6CDD1DULL;
    return keys_[(r >> 11) % keys_.size()];
  }

  void Issue(Connection& c, uint64_t now) {
    if (now >= window_end_) {
      if (c.active) --active_;
      c.active = false;
      return;
    }
    if (!c.active) ++active_;
    c.active = true;
    c.out.clear();
    for (int i = 0; i < o_.pipeline; ++i) {
      c.out += "incr ";
      c.out += NextKey();
      c.out += " 1\r\n";
    }
    c.written = 0;
    c.replies_left = o_.pipeline;
    c.started = now;
    c.measured = now >= window_start_;
    Flush(c);
  }

  void Flush(Connection& c) {
    while (c.written < c.out.size()) {
      ssize_t n = write(c.fd, c.out.data() + c.written, c.out.size() - c.written);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN) {
          Watch(c, EPOLLIN | EPOLLOUT);
          return;
        }
        Die("write");
      }
      c.written += static_cast<size_t>(n);
    }
    Watch(c, EPOLLIN);
  }

  void Watch(Connection& c, uint32_t events) {
    epoll_event ev{};
    ev.events = events;
    ev.data.ptr = &c;
    bool want_out = (events & EPOLLOUT) != 0;
    if (want_out == c.watching_out) return;
    c.watching_out = want_out;
    if (epoll_ctl(epfd_, EPOLL_CTL_MOD, c.fd, &ev) != 0) Die("epoll_ctl(MOD)");
  }

  void Read(Connection& c) {
    while (true) {
      ssize_t n = read(c.fd, c.in + c.in_len, sizeof c.in - c.in_len);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN) return;
        Die("read");
      }
      if (n == 0) {
        errno = ECONNRESET;
        Die("read (memcached closed the connection)");
      }
      c.in_len += static_cast<size_t>(n);
      size_t pos = 0;
      while (true) {
        void* nl = std::memchr(c.in + pos, '\n', c.in_len - pos);
        if (nl == nullptr) break;
        size_t end = static_cast<size_t>(static_cast<char*>(nl) - c.in);
        OnReply(c, std::string_view(c.in + pos, end - pos));
        pos = end + 1;
      }
      std::memmove(c.in, c.in + pos, c.in_len - pos);
      c.in_len -= pos;
      if (c.in_len == sizeof c.in) {
        std::fprintf(stderr, "memcached_incr_bench: reply line longer than %zu bytes\n",
                     sizeof c.in);
        std::exit(1);
      }
    }
  }

  void OnReply(Connection& c, std::string_view line) {
    if (!c.active || c.replies_left == 0) {
      std::fprintf(stderr, "memcached_incr_bench: unexpected reply '%.*s'\n",
                   static_cast<int>(line.size()), line.data());
      std::exit(1);
    }
    const bool ok = !line.empty() && line[0] >= '0' && line[0] <= '9';
    if (c.measured) {
      if (ok) {
        ++ok_;
      } else {
        ++errors_;
        if (first_error_.empty()) first_error_ = std::string(line.substr(0, line.find('\r')));
      }
    }
    if (--c.replies_left > 0) return;
    const uint64_t now = NowNs();
    if (c.measured) {
      ++round_trips_;
      if (samples_.size() < o_.max_samples) {
        samples_.push_back(now - c.started);
      } else {
        ++dropped_samples_;
      }
      last_done_ = std::max(last_done_, now);
    }
    Issue(c, now);
  }

  double Percentile(double q) {
    if (samples_.empty()) return 0;
    size_t i = std::min(samples_.size() - 1,
                        static_cast<size_t>(q * static_cast<double>(samples_.size())));
    std::nth_element(samples_.begin(), samples_.begin() + static_cast<std::ptrdiff_t>(i),
                     samples_.end());
    return static_cast<double>(samples_[i]) / 1000.0;
  }

  int Report() {
    const double elapsed = static_cast<double>(last_done_ - window_start_) / 1e9;
    const double ops = elapsed > 0 ? static_cast<double>(ok_) / elapsed : 0;
    const double calls = elapsed > 0 ? static_cast<double>(round_trips_) / elapsed : 0;
    const double max_us =
        samples_.empty()
            ? 0
            : static_cast<double>(*std::max_element(samples_.begin(), samples_.end())) / 1000.0;
    const double p50 = Percentile(0.50), p90 = Percentile(0.90), p99 = Percentile(0.99),
                 p999 = Percentile(0.999);
    std::string err;
    for (char ch : first_error_) {
      if (ch == '"' || ch == '\\') err += '\\';
      if (static_cast<unsigned char>(ch) >= 0x20) err += ch;
    }
    std::printf(
        "{\"system\":\"memcached\",\"command\":\"incr\",\"keys\":%lld,\"connections\":%d,"
        "\"pipeline\":%d,\"warmup_seconds\":%g,\"elapsed_seconds\":%.6f,\"ok\":%llu,\"errors\":%"
        "llu,"
        "\"first_error\":\"%s\",\"round_trips\":%llu,\"dropped_samples\":%llu,"
        "\"calls_per_second\":%.3f,\"ops_per_second\":%.3f,"
        "\"latency_us\":{\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,\"p999\":%.3f,\"max\":%.3f}}\n",
        static_cast<long long>(o_.keys), o_.connections, o_.pipeline, o_.warmup, elapsed,
        static_cast<unsigned long long>(ok_), static_cast<unsigned long long>(errors_), err.c_str(),
        static_cast<unsigned long long>(round_trips_),
        static_cast<unsigned long long>(dropped_samples_), calls, ops, p50, p90, p99, p999, max_us);
    if (ok_ == 0) {
      std::fprintf(stderr, "memcached_incr_bench: no increment completed in the measured window\n");
      return 1;
    }
    if (errors_ > 0) {
      std::fprintf(stderr, "memcached_incr_bench: %llu errors; first: %s\n",
                   static_cast<unsigned long long>(errors_), first_error_.c_str());
      return 1;
    }
    return 0;
  }

  const Options o_;
  uint64_t rng_;
  std::vector<std::string> keys_;
  std::vector<Connection> conns_;
  int epfd_ = -1;
  int active_ = 0;
  uint64_t window_start_ = 0;
  uint64_t window_end_ = 0;
  uint64_t last_done_ = 0;
  uint64_t ok_ = 0;
  uint64_t errors_ = 0;
  uint64_t round_trips_ = 0;
  uint64_t dropped_samples_ = 0;
  std::string first_error_;
  std::vector<uint64_t> samples_;
};

}  // namespace

int main(int argc, char** argv) {
  const Options options = ParseOptions(argc, argv);
  Driver driver(options);
  CreateKeys(options, driver.keys());
  return driver.Run();
}
