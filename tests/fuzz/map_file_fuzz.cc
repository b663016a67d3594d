// Fuzz target: validating and opening a map file found on disk (shared/
// table_file.cc), read-only (`counterctl inspect`, the start-up decision)
// and as the new owner (Open: validation, then crash repair and compaction,
// crash_repair.cc), then using what Open accepted.
//
// A map file's header is checksummed, so random bytes rarely get past it.
// The input is therefore a list of patches to a real table file made once
// per process (a small table with counters, a tombstone and a committed
// batch):
//   byte 0:          flags; bit 0 recomputes the header's checksums (of the
//                    static and of the trust fields) after patching, so the
//                    fuzzer reaches the slots and regions
//   then, repeated:  u32 offset (LE, taken modulo the file size), u8 n,
//                    n bytes written at that offset
// Invariants: no crash or sanitizer report; a table Open accepts serves
// Get, List, Increment, IncrementBatch and a snapshot without crashing.
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>

#include "shared/counter_table.h"
#include "shared/layout.h"

namespace {

using countersd::CounterTable;

struct Seed {
  std::string dir;
  std::string path;
  std::string image;
};

const Seed& TheSeed() {
  static const Seed* seed = [] {
    auto* s = new Seed;
    std::string tmpl =
        (std::filesystem::temp_directory_path() / "countersd-fuzz-map-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) std::abort();
    s->dir = tmpl;
    s->path = s->dir + "/counters.map";
    {
      auto t = CounterTable::Create(s->path, 64);
      if (!t.ok()) std::abort();
      for (const char* k : {"a", "b", "requests/total", "deleted", "\xc3\xa9t\xc3\xa9"}) {
        if (!(*t)->Increment(k, 3).ok()) std::abort();
      }
      if (!(*t)->Delete("deleted").ok()) std::abort();
      const CounterTable::KeyDelta ops[] = {{"a", 1}, {"batch/new", 2}};
      if (!(*t)->IncrementBatch(ops).ok()) std::abort();
    }
    s->image.resize(std::filesystem::file_size(s->path));
    int fd = open(s->path.c_str(), O_RDONLY);
    if (fd < 0 || pread(fd, s->image.data(), s->image.size(), 0) !=
                      static_cast<ssize_t>(s->image.size())) {
      std::abort();
    }
    close(fd);
    return s;
  }();
  return *seed;
}

void WriteFile(const std::string& path, const std::string& bytes) {
  int fd = open(path.c_str(), O_WRONLY | O_TRUNC);
  if (fd < 0 || pwrite(fd, bytes.data(), bytes.size(), 0) != static_cast<ssize_t>(bytes.size())) {
    std::abort();
  }
  close(fd);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const Seed& seed = TheSeed();
  if (size == 0) return 0;
  std::string image = seed.image;
  const uint8_t flags = data[0];
  for (size_t i = 1; i + 5 <= size;) {
    uint32_t off;
    std::memcpy(&off, data + i, 4);
    const size_t n = data[i + 4];
    i += 5;
    for (size_t k = 0; k < n && i < size; ++k, ++i) {
      image[(off + k) % image.size()] = static_cast<char>(data[i]);
    }
  }
  if (flags & 1) {
    auto* h = reinterpret_cast<countersd::layout::TableHeader*>(image.data());
    h->header_crc = countersd::layout::HeaderCrc(*h);
    h->trust_crc = countersd::layout::TrustCrc(*h);
  }
  WriteFile(seed.path, image);

  if (auto ro = CounterTable::OpenReadOnly(seed.path); ro.ok()) {
    (*ro)->ForEach([](std::string_view, int64_t) {});
    (void)(*ro)->List("", "", 10);
    (void)(*ro)->Get("a");
  }
  auto t = CounterTable::Open(seed.path);
  if (!t.ok()) return 0;
  CounterTable& table = **t;
  (void)table.Get("a");
  (void)table.List("", "", 100);
  (void)table.Increment("fuzz/new", 1);
  (void)table.Increment("a", 1);
  const CounterTable::KeyDelta ops[] = {{"b", 1}, {"fuzz/batch", 1}};
  (void)table.IncrementBatch(ops);
  table.SnapshotForEach([](std::string_view, int64_t) {});
  return 0;
}
