// fdatasync_bench: the disk's own fdatasync latency on a directory's file
// system, the floor under a durable write (shared/write_ahead_log.h): what
// `make bench` sets the durable latencies and rates against. Appends
// --bytes at the end of a fresh file and fdatasyncs it, --count times (as
// the log of durable writes does: a record, then a sync), after --warmup
// unmeasured rounds, then removes the file. Prints one JSON object:
// {"count":N,"bytes":B,"p50_us":..,"p99_us":..,"mean_us":..}.
//
//   fdatasync_bench --dir=DIR [--count=200] [--bytes=64] [--warmup=10]
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "tests/tool_flags.h"

int main(int argc, char** argv) {
  std::string dir;
  long long count = 200, bytes = 64, warmup = 10;
  countersd::testing::ToolFlags flags(
      "fdatasync_bench",
      "Measures fdatasync after an append on DIR's file system (the disk's own sync latency).");
  flags.Required("dir", &dir, "DIR", "a directory on the file system to measure");
  flags.Add("count", &count, "N", "measured appends and syncs (>= 1)");
  flags.Add("bytes", &bytes, "B", "bytes appended before each sync (>= 1)");
  flags.Add("warmup", &warmup, "N", "unmeasured rounds first");
  flags.Parse(argc, argv);
  if (count < 1 || bytes < 1 || warmup < 0) flags.Fail("--count and --bytes must be >= 1");
  const std::string path = dir + "/fdatasync_bench." + std::to_string(getpid());
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    std::fprintf(stderr, "fdatasync_bench: open(%s): %s\n", path.c_str(), std::strerror(errno));
    return 1;
  }
  std::vector<char> buf(static_cast<size_t>(bytes), 'x');
  std::vector<double> us;
  for (long long i = 0; i < warmup + count; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    if (write(fd, buf.data(), buf.size()) != static_cast<ssize_t>(buf.size()) || fdatasync(fd) != 0) {
      std::fprintf(stderr, "fdatasync_bench: write or fdatasync: %s\n", std::strerror(errno));
      close(fd);
      unlink(path.c_str());
      return 1;
    }
    const double d =
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
    if (i >= warmup) us.push_back(d);
  }
  close(fd);
  unlink(path.c_str());
  std::sort(us.begin(), us.end());
  double sum = 0;
  for (double d : us) sum += d;
  auto at = [&](double q) { return us[std::min(us.size() - 1, static_cast<size_t>(q * us.size()))]; };
  std::printf("{\"count\":%lld,\"bytes\":%lld,\"p50_us\":%.1f,\"p99_us\":%.1f,\"mean_us\":%.1f}\n",
              count, bytes, at(0.5), at(0.99), sum / us.size());
  return 0;
}
