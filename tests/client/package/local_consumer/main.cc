// Links against the installed countersd::local and attaches to a directory
// that no daemon owns: proof that its header, the static table library it
// uses (countersd::shared) and their dependencies (Abseil, zlib) resolve
// from the install prefix, and that the call reaches the table's code.
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "client/local/local_table.h"

int main() {
  char dir[] = "/tmp/countersd-local-consumer-XXXXXX";
  if (mkdtemp(dir) == nullptr) {
    std::perror("mkdtemp");
    return 1;
  }
  auto t = countersd::local::LocalTable::Attach(dir);
  rmdir(dir);
  if (t.status().code() != absl::StatusCode::kUnavailable) {
    std::fprintf(stderr, "expected UNAVAILABLE, got %s\n", t.status().ToString().c_str());
    return 1;
  }
  std::printf("consumer ok: %s\n", t.status().ToString().c_str());
  return 0;
}
