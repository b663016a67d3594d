// Certificates made at test time with Debian's openssl(1): a CA, a server
// certificate for localhost and 127.0.0.1, a client certificate from the
// same CA, and a second CA with a client certificate of its own. ECDSA
// P-256, valid for a day. Nothing is committed.
#ifndef COUNTERSD_TESTS_TRANSPORT_TEST_CERTS_H_
#define COUNTERSD_TESTS_TRANSPORT_TEST_CERTS_H_

#include <string>

#include "absl/status/statusor.h"

namespace countersd::testing {

struct TestCerts {
  std::string dir;
  std::string ca_crt, ca_key;            // the CA the server trusts for clients
  std::string server_crt, server_key;    // CN=localhost, SAN localhost + 127.0.0.1
  std::string client_crt, client_key;    // CN=alice, from ca
  std::string other_ca_crt;              // a CA nobody trusts
  std::string other_client_crt, other_client_key;  // from other_ca
};

// Makes them in `dir` (which must exist). Errors carry openssl's output.
absl::StatusOr<TestCerts> MakeTestCerts(const std::string& dir);

// A new server key and certificate from `certs`' CA (a cert-manager
// renewal), written to `key_out` and `crt_out` (not in place: the caller
// renames them over the served files).
absl::Status IssueServerCert(const TestCerts& certs, const std::string& key_out,
                             const std::string& crt_out, const std::string& common_name);

std::string ReadWholeFile(const std::string& path);
void WriteWholeFile(const std::string& path, const std::string& data);

}  // namespace countersd::testing

#endif  // COUNTERSD_TESTS_TRANSPORT_TEST_CERTS_H_
