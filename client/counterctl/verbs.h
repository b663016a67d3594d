// The verbs of counterctl, one group per file.
#ifndef COUNTERSD_CLIENT_COUNTERCTL_VERBS_H_
#define COUNTERSD_CLIENT_COUNTERCTL_VERBS_H_

#include <vector>

#include "client/counterctl/cli.h"

namespace countersd::ctl {

// inc, dec, get, set, cas, del, list, snapshot, stats, health (verbs.cc).
std::vector<VerbSpec> ServerVerbs();
// inspect PATH (inspect.cc): offline, never writes the file.
VerbSpec InspectVerb();
// bench (bench.cc): the load generator.
VerbSpec BenchVerb();
// token new (token.cc): a new bearer token and its auth-file line.
VerbSpec TokenVerb();

}  // namespace countersd::ctl

#endif  // COUNTERSD_CLIENT_COUNTERCTL_VERBS_H_
