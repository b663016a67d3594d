#include "tests/transport/test_certs.h"

#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/e2e/daemon_harness.h"

namespace countersd::testing {
namespace {

absl::Status Openssl(std::vector<std::string> args) {
  args.insert(args.begin(), OPENSSL_BIN);
  absl::StatusOr<CommandResult> r = RunCommand(args, absl::Seconds(60));
  if (!r.ok()) return r.status();
  if (r->exit_code != 0) {
    return absl::InternalError(absl::StrCat("openssl ", args[1], " failed: ", r->err));
  }
  return absl::OkStatus();
}

absl::Status SelfSignedCa(const std::string& key, const std::string& crt, const std::string& cn) {
  return Openssl({"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                  "-nodes", "-keyout", key, "-out", crt, "-days", "1", "-subj",
                  absl::StrCat("/CN=", cn)});
}

absl::Status Issue(const std::string& ca_crt, const std::string& ca_key, const std::string& key,
                   const std::string& crt, const std::string& cn, const std::string& ext_file) {
  const std::string csr = absl::StrCat(crt, ".csr");
  if (absl::Status s = Openssl({"req", "-newkey", "ec", "-pkeyopt",
                                "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out",
                                csr, "-subj", absl::StrCat("/CN=", cn)});
      !s.ok()) {
    return s;
  }
  std::vector<std::string> args = {"x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key,
                                   "-CAcreateserial", "-out", crt, "-days", "1"};
  if (!ext_file.empty()) {
    args.push_back("-extfile");
    args.push_back(ext_file);
  }
  return Openssl(args);
}

}  // namespace

std::string ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteWholeFile(const std::string& path, const std::string& data) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << data;
}

absl::Status IssueServerCert(const TestCerts& c, const std::string& key_out,
                             const std::string& crt_out, const std::string& common_name) {
  return Issue(c.ca_crt, c.ca_key, key_out, crt_out, common_name,
               absl::StrCat(c.dir, "/server.ext"));
}

absl::StatusOr<TestCerts> MakeTestCerts(const std::string& dir) {
  TestCerts c;
  c.dir = dir;
  auto p = [&](const char* name) { return absl::StrCat(dir, "/", name); };
  c.ca_crt = p("ca.crt");
  c.ca_key = p("ca.key");
  c.server_crt = p("server.crt");
  c.server_key = p("server.key");
  c.client_crt = p("client.crt");
  c.client_key = p("client.key");
  c.other_ca_crt = p("other-ca.crt");
  c.other_client_crt = p("other-client.crt");
  c.other_client_key = p("other-client.key");
  WriteWholeFile(p("server.ext"), "subjectAltName=DNS:localhost,IP:127.0.0.1\n");
  if (absl::Status s = SelfSignedCa(c.ca_key, c.ca_crt, "countersd-test-ca"); !s.ok()) return s;
  if (absl::Status s = IssueServerCert(c, c.server_key, c.server_crt, "localhost"); !s.ok())
    return s;
  if (absl::Status s = Issue(c.ca_crt, c.ca_key, c.client_key, c.client_crt, "alice", "");
      !s.ok())
    return s;
  const std::string other_ca_key = p("other-ca.key");
  if (absl::Status s = SelfSignedCa(other_ca_key, c.other_ca_crt, "other-ca"); !s.ok()) return s;
  if (absl::Status s = Issue(c.other_ca_crt, other_ca_key, c.other_client_key, c.other_client_crt,
                             "mallory", "");
      !s.ok())
    return s;
  return c;
}

}  // namespace countersd::testing
