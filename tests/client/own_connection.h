// Channel arguments of a test client on its own TCP connection (a local
// subchannel pool and a distinct argument, so that clients spread over the
// handlers), reconnecting within 50 to 500 ms after a handler dies or the
// daemon restarts. For the e2e tests that kill handlers under load.
#ifndef COUNTERSD_TESTS_CLIENT_OWN_CONNECTION_H_
#define COUNTERSD_TESTS_CLIENT_OWN_CONNECTION_H_

#include <grpcpp/support/channel_arguments.h>

namespace countersd::testing {

inline grpc::ChannelArguments OwnFastReconnectingConnection(int index) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt("countersd.test_connection", index);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 50);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 50);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 500);
  return args;
}

}  // namespace countersd::testing

#endif  // COUNTERSD_TESTS_CLIENT_OWN_CONNECTION_H_
