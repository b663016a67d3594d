// countersd: named 64-bit counters in a shared memory-mapped table, served
// over gRPC by pre-forked handler processes. `countersd --help` lists the
// flags; server/supervisor.cc explains the process model.
#include "server/config.h"
#include "server/handler_process.h"
#include "server/supervisor.h"

int main(int argc, char** argv) {
  countersd::Config config = countersd::ParseFlagsOrExit(argc, argv);
  return countersd::Supervisor(std::move(config), &countersd::RunHandlerProcess).Run();
}
