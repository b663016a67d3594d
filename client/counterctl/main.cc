// counterctl: the operator's command-line tool for countersd. See cli.h.
#include "client/counterctl/cli.h"

int main(int argc, char** argv) { return countersd::ctl::Main(argc, argv); }
