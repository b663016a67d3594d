// The numeric listen address the supervisor hands to its handlers: what
// FormatSocketAddress writes, ParseSocketAddress reads back, and nothing
// else is accepted.
#include "server/socket_address.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <string>

#include "gtest/gtest.h"

namespace countersd {
namespace {

TEST(SocketAddressTest, FormatAndParseAreInverses) {
  for (const std::string address : {"127.0.0.1:50051", "0.0.0.0:1", "[::1]:50051", "[::]:65535"}) {
    absl::StatusOr<SocketAddress> parsed = ParseSocketAddress(address);
    ASSERT_TRUE(parsed.ok()) << address << ": " << parsed.status();
    EXPECT_EQ(FormatSocketAddress(parsed->addr), address);
    EXPECT_EQ(parsed->len, parsed->addr.ss_family == AF_INET6 ? sizeof(sockaddr_in6)
                                                              : sizeof(sockaddr_in));
  }
}

TEST(SocketAddressTest, AnythingButANumericHostAndPortIsRefused) {
  for (const std::string address :
       {"localhost:50051", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "[::1:50051", "::1:5",
        "127.0.0.1:-1", ""}) {
    absl::StatusOr<SocketAddress> parsed = ParseSocketAddress(address);
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << address;
  }
}

}  // namespace
}  // namespace countersd
