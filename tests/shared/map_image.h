// A closed map file mapped read-write by a test, to damage it through the
// layout's own structs (shared/layout.h) rather than guessed offsets.
// REQUIRES: no CounterTable has the file open while it is changed.
#ifndef COUNTERSD_TESTS_SHARED_MAP_IMAGE_H_
#define COUNTERSD_TESTS_SHARED_MAP_IMAGE_H_

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <string>

#include "gtest/gtest.h"
#include "shared/layout.h"

namespace countersd {

class MapImage {
 public:
  explicit MapImage(const std::string& path) {
    int fd = open(path.c_str(), O_RDWR);
    EXPECT_GE(fd, 0) << path;
    struct stat st = {};
    EXPECT_EQ(fstat(fd, &st), 0);
    size_ = static_cast<size_t>(st.st_size);
    void* p = mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    EXPECT_NE(p, MAP_FAILED);
    base_ = static_cast<char*>(p);
  }
  ~MapImage() { munmap(base_, size_); }
  MapImage(const MapImage&) = delete;
  MapImage& operator=(const MapImage&) = delete;

  layout::TableHeader* header() const { return reinterpret_cast<layout::TableHeader*>(base_); }
  uint32_t regions() const { return header()->regions; }
  uint32_t region_slots() const { return header()->region_slots; }
  layout::RegionShared* region(uint32_t r) const {
    return reinterpret_cast<layout::RegionShared*>(base_ + header()->regions_offset) + r;
  }
  layout::Slot* slot(uint32_t r, uint32_t i) const {
    return reinterpret_cast<layout::Slot*>(base_ + header()->slots_offset) +
           uint64_t{r} * region_slots() + i;
  }
  // The index in region r of the live slot holding `key`, or -1.
  int64_t Find(uint32_t r, std::string_view key) const {
    for (uint32_t i = 0; i < region_slots(); ++i) {
      if (slot(r, i)->state == layout::kLive && slot(r, i)->stored_key() == key) return i;
    }
    return -1;
  }

 private:
  char* base_ = nullptr;
  size_t size_ = 0;
};

}  // namespace countersd

#endif  // COUNTERSD_TESTS_SHARED_MAP_IMAGE_H_
