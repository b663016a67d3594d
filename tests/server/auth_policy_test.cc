// The auth file and the checks of a call, without gRPC: parsing (every
// error names its line), which principal a call is (tokens, certificate
// SANs and CN, unix uids), the role x method matrix of issue 12, key
// scopes, List over several scope prefixes on a real table, the denial
// log's rate limit and a reload that keeps the policy in force.
#include "server/auth_policy.h"

#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/access_control.h"
#include "server/counter_service.h"
#include "server/denial_log.h"
#include "server/scoped_list.h"
#include "shared/bearer_token.h"
#include "tests/shared/table_fixture.h"

namespace countersd {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kTokenA[] = "token-a-secret";
constexpr char kTokenB[] = "token-b-secret";

std::shared_ptr<const AuthPolicy> MustParse(const std::string& text) {
  absl::StatusOr<std::shared_ptr<const AuthPolicy>> p = AuthPolicy::Parse(text, "auth");
  EXPECT_TRUE(p.ok()) << p.status();
  return p.ok() ? *p : nullptr;
}

std::string ParseError(const std::string& text) {
  absl::StatusOr<std::shared_ptr<const AuthPolicy>> p = AuthPolicy::Parse(text, "auth");
  EXPECT_FALSE(p.ok()) << text;
  if (p.ok()) return "";
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(p.status().message());
}

CallIdentity WithToken(const std::string& token) {
  CallIdentity id;
  id.bearer_token = token;
  return id;
}

// ---- Parsing ----

TEST(AuthPolicyParseTest, ReadsEveryKindOfPrincipalWithCommentsAndBlankLines) {
  std::shared_ptr<const AuthPolicy> p = MustParse(absl::StrCat(
      "# principal  role  prefixes\n"
      "\n",
      TokenPrincipal(kTokenA), "\twrite  jobs/ quota/   # the job runners\n",
      "cert:spiffe://example.org/billing read\r\n"
      "cert:CN=alice admin\n"
      "   uid:1000 write local/\n"));
  ASSERT_NE(p, nullptr);
  ASSERT_EQ(p->principals().size(), 4u);
  const Principal& t = p->principals()[0];
  EXPECT_EQ(t.kind, Principal::Kind::kToken);
  EXPECT_EQ(t.role, AuthRole::kWrite);
  EXPECT_THAT(t.prefixes, ElementsAre("jobs/", "quota/"));
  EXPECT_EQ(t.line, 3);
  EXPECT_EQ(t.name, absl::StrCat("token:sha256:", TokenSha256Hex(kTokenA).substr(0, 8), "..."));
  EXPECT_EQ(p->principals()[1].cert_subject, "spiffe://example.org/billing");
  EXPECT_TRUE(p->principals()[1].prefixes.empty());
  EXPECT_EQ(p->principals()[2].cert_subject, "CN=alice");
  EXPECT_EQ(p->principals()[3].uid, 1000u);
  EXPECT_EQ(p->principals()[3].line, 6);
}

TEST(AuthPolicyParseTest, PrefixesAreSortedAndThoseUnderAnotherDropped) {
  std::shared_ptr<const AuthPolicy> p = MustParse("uid:1 read quota/ jobs/x jobs/ a\n");
  ASSERT_NE(p, nullptr);
  EXPECT_THAT(p->principals()[0].prefixes, ElementsAre("a", "jobs/", "quota/"));
}

TEST(AuthPolicyParseTest, AHashIsAcceptedInUpperCase) {
  std::string hex = TokenSha256Hex(kTokenA);
  for (char& c : hex) c = static_cast<char>(toupper(c));
  std::shared_ptr<const AuthPolicy> p = MustParse(absl::StrCat("token:sha256:", hex, " read\n"));
  ASSERT_NE(p, nullptr);
  EXPECT_NE(p->Lookup(WithToken(kTokenA)), nullptr);
}

TEST(AuthPolicyParseTest, EveryErrorNamesTheFileTheLineAndWhatIsWrong) {
  const std::string good = "uid:1 read\n";
  struct Case {
    std::string line;
    std::string says;
  };
  const std::vector<Case> cases = {
      {"user:bob read", "unknown principal \"user:bob\""},
      {"token:abc read", "token:sha256:<64 hex digits>"},
      {"token:sha256:abcd read", "needs 64 hex digits"},
      {absl::StrCat("token:sha256:", std::string(63, 'a'), "g read"), "not a hex digit"},
      {"cert: read", "cert: needs a SAN"},
      {"cert:CN= read", "needs a name after CN="},
      {"uid:bob read", "numeric uid"},
      {"uid:-1 read", "numeric uid"},
      {"uid:4294967295 read", "numeric uid"},
      {"uid:99999999999 read", "numeric uid"},
      {"uid:1000", "has no role"},
      {"uid:1000 reader", "unknown role \"reader\""},
      {"uid:1000 Read", "unknown role"},
      {"uid:1000 read jobs/\x01", "key prefix"},
      {absl::StrCat("uid:1000 read ", std::string(161, 'k')), "key prefix"},
      {"uid:1 write", "already given on line 2"},
  };
  for (const Case& c : cases) {
    std::string error = ParseError(absl::StrCat("# header\n", good, c.line, "\n"));
    EXPECT_THAT(error, HasSubstr("auth:3: ")) << c.line;
    EXPECT_THAT(error, HasSubstr(c.says)) << c.line;
  }
}

TEST(AuthPolicyParseTest, AFileWithNoPrincipalIsAnError) {
  EXPECT_THAT(ParseError("# nothing yet\n\n"), HasSubstr("no principal"));
  EXPECT_THAT(ParseError(""), HasSubstr("no principal"));
}

TEST(AuthPolicyParseTest, TheSameTokenTwiceIsAnError) {
  std::string line = absl::StrCat(TokenPrincipal(kTokenA), " read\n");
  EXPECT_THAT(ParseError(line + line), HasSubstr("auth:2: principal token:sha256:"));
}

TEST(AuthPolicyParseTest, AMissingFileIsAnErrorNamingIt) {
  absl::StatusOr<std::shared_ptr<const AuthPolicy>> p =
      AuthPolicy::LoadFile("/nonexistent/countersd-auth");
  ASSERT_FALSE(p.ok());
  EXPECT_THAT(p.status().message(), HasSubstr("/nonexistent/countersd-auth"));
  EXPECT_THAT(p.status().message(), HasSubstr("No such file"));
}

// ---- Lookup ----

class AuthPolicyLookupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    policy_ = MustParse(absl::StrCat(TokenPrincipal(kTokenA), " write jobs/\n",
                                     TokenPrincipal(kTokenB), " admin\n",
                                     "cert:spiffe://example.org/billing read\n"
                                     "cert:billing.example.org write\n"
                                     "cert:CN=alice admin\n"
                                     "uid:1000 write local/\n"));
    ASSERT_NE(policy_, nullptr);
  }
  const Principal* Find(const CallIdentity& id) { return policy_->Lookup(id); }
  std::shared_ptr<const AuthPolicy> policy_;
};

TEST_F(AuthPolicyLookupTest, TokensFindTheirLine) {
  ASSERT_NE(Find(WithToken(kTokenA)), nullptr);
  EXPECT_EQ(Find(WithToken(kTokenA))->line, 1);
  EXPECT_EQ(Find(WithToken(kTokenB))->line, 2);
  EXPECT_EQ(Find(WithToken("token-c")), nullptr);
  EXPECT_EQ(Find(WithToken("")), nullptr);
  // The hash itself is not the token.
  EXPECT_EQ(Find(WithToken(TokenSha256Hex(kTokenA))), nullptr);
}

TEST(AuthPolicyManyTokensTest, EachOfManyTokensFindsItsOwnLine) {
  std::vector<std::string> tokens;
  std::string text;
  for (int i = 0; i < 300; ++i) {
    tokens.push_back(absl::StrCat("token-", i));
    absl::StrAppend(&text, TokenPrincipal(tokens.back()), i % 2 ? " read\n" : " write\n");
  }
  std::shared_ptr<const AuthPolicy> p = MustParse(text);
  ASSERT_NE(p, nullptr);
  for (int i = 0; i < 300; ++i) {
    const Principal* found = p->Lookup(WithToken(tokens[i]));
    ASSERT_NE(found, nullptr) << i;
    EXPECT_EQ(found->line, i + 1);
  }
  EXPECT_EQ(p->Lookup(WithToken("token-300")), nullptr);
}

TEST_F(AuthPolicyLookupTest, AnUnknownTokenIsNotReplacedByAKnownCertificateOrUid) {
  CallIdentity id = WithToken("token-c");
  id.cert_cn = "alice";
  id.peer_uid = 1000;
  EXPECT_EQ(Find(id), nullptr);
  id.bearer_token.reset();
  ASSERT_NE(Find(id), nullptr);
  EXPECT_EQ(Find(id)->name, "cert:CN=alice");
}

TEST_F(AuthPolicyLookupTest, MalformedAuthorizationFindsNobody) {
  CallIdentity id;
  id.malformed_authorization = true;
  id.cert_cn = "alice";
  EXPECT_EQ(Find(id), nullptr);
}

TEST_F(AuthPolicyLookupTest, CertificatesMatchAUriOrDnsSanOrTheCn) {
  CallIdentity id;
  id.cert_sans = {"other.example.org", "spiffe://example.org/billing"};
  ASSERT_NE(Find(id), nullptr);
  EXPECT_EQ(Find(id)->name, "cert:spiffe://example.org/billing");
  id.cert_sans = {"billing.example.org"};
  EXPECT_EQ(Find(id)->name, "cert:billing.example.org");
  // A SAN beats the CN; the CN is matched only against cert:CN= lines.
  id.cert_cn = "alice";
  EXPECT_EQ(Find(id)->name, "cert:billing.example.org");
  id.cert_sans.clear();
  EXPECT_EQ(Find(id)->name, "cert:CN=alice");
  id.cert_cn = "billing.example.org";  // a CN equal to a SAN line's name
  EXPECT_EQ(Find(id), nullptr);
  id.cert_cn.reset();
  id.cert_sans = {"CN=alice"};  // a SAN spelled like a CN line
  EXPECT_EQ(Find(id), nullptr);
  id.cert_sans = {"spiffe://example.org/billing/x", "spiffe://example.org/"};
  EXPECT_EQ(Find(id), nullptr);
}

TEST_F(AuthPolicyLookupTest, UnixUidsMatchExactly) {
  CallIdentity id;
  id.peer_uid = 1000;
  ASSERT_NE(Find(id), nullptr);
  EXPECT_EQ(Find(id)->name, "uid:1000");
  id.peer_uid = 1001;
  EXPECT_EQ(Find(id), nullptr);
  id.peer_uid = 0;
  EXPECT_EQ(Find(id), nullptr);
  EXPECT_EQ(Find(CallIdentity{}), nullptr);
}

// ---- Roles ----

TEST(AuthRoleTest, EachRoleMayCallExactlyTheMethodsTheIssueLists) {
  const std::map<AuthRole, std::vector<RpcMethod>> allowed = {
      {AuthRole::kRead,
       {RpcMethod::kGet, RpcMethod::kBatchGet, RpcMethod::kList, RpcMethod::kGetStats}},
      {AuthRole::kWrite,
       {RpcMethod::kGet, RpcMethod::kBatchGet, RpcMethod::kList, RpcMethod::kGetStats,
        RpcMethod::kIncrement, RpcMethod::kIncrementBatch, RpcMethod::kSet,
        RpcMethod::kCompareAndSet, RpcMethod::kDelete, RpcMethod::kIncrementStream}},
      {AuthRole::kAdmin,
       std::vector<RpcMethod>(std::begin(kAllRpcMethods), std::end(kAllRpcMethods))},
  };
  for (const auto& [role, methods] : allowed) {
    Principal p;
    p.name = "uid:7";
    p.role = role;
    for (RpcMethod m : kAllRpcMethods) {
      const bool expected = std::find(methods.begin(), methods.end(), m) != methods.end();
      absl::Status s = AuthorizeMethod(&p, CallIdentity{}, m);
      EXPECT_EQ(s.ok(), expected) << AuthRoleName(role) << " " << RpcMethodName(m);
      if (!expected) {
        EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
        EXPECT_THAT(s.message(), HasSubstr(RpcMethodName(m)));
        EXPECT_THAT(s.message(), HasSubstr(absl::StrCat("role ", AuthRoleName(role))));
      }
    }
  }
}

TEST(AuthRoleTest, NoPrincipalIsUnauthenticatedSayingWhatWasSent) {
  for (RpcMethod m : kAllRpcMethods) {
    EXPECT_EQ(AuthorizeMethod(nullptr, CallIdentity{}, m).code(),
              absl::StatusCode::kUnauthenticated);
  }
  EXPECT_THAT(AuthorizeMethod(nullptr, CallIdentity{}, RpcMethod::kGet).message(),
              HasSubstr("no credentials"));
  absl::Status unknown = AuthorizeMethod(nullptr, WithToken(kTokenA), RpcMethod::kGet);
  EXPECT_THAT(unknown.message(), HasSubstr("unknown bearer token"));
  EXPECT_THAT(unknown.message(), Not(HasSubstr(kTokenA)));
  CallIdentity cert;
  cert.cert_cn = "mallory";
  EXPECT_THAT(AuthorizeMethod(nullptr, cert, RpcMethod::kGet).message(), HasSubstr("CN=mallory"));
  CallIdentity uid;
  uid.peer_uid = 4242;
  EXPECT_THAT(AuthorizeMethod(nullptr, uid, RpcMethod::kGet).message(), HasSubstr("uid 4242"));
}

// ---- Key scopes ----

TEST(AuthScopeTest, KeysOutsideThePrefixesArePermissionDeniedNamingTheKey) {
  std::shared_ptr<const AuthPolicy> policy = MustParse("uid:1 write jobs/ quota/\nuid:2 read\n");
  const Principal& scoped = policy->principals()[0];
  EXPECT_TRUE(AuthorizeKey(scoped, "jobs/1", "key").ok());
  EXPECT_TRUE(AuthorizeKey(scoped, "quota/", "key").ok());
  absl::Status s = AuthorizeKey(scoped, "jobs", "keys[2]");
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(s.message(), HasSubstr("keys[2] \"jobs\""));
  EXPECT_THAT(s.message(), HasSubstr("jobs/ quota/"));
  EXPECT_FALSE(AuthorizeKey(scoped, "other/jobs/1", "key").ok());
  EXPECT_TRUE(AuthorizeKey(policy->principals()[1], "anything", "key").ok());
}

TEST(AuthScopeTest, ListRangesOfAPrefixInsideTheScopeIsThatPrefix) {
  std::shared_ptr<const AuthPolicy> policy = MustParse("uid:1 read jobs/ quota/\nuid:2 read\n");
  const Principal& scoped = policy->principals()[0];
  EXPECT_THAT(*ListRanges(scoped, "jobs/"), ElementsAre("jobs/"));
  EXPECT_THAT(*ListRanges(scoped, "jobs/a"), ElementsAre("jobs/a"));
  EXPECT_THAT(*ListRanges(policy->principals()[1], ""), ElementsAre(""));
  EXPECT_THAT(*ListRanges(policy->principals()[1], "x"), ElementsAre("x"));
}

TEST(AuthScopeTest, ListRangesOfAPrefixOfSeveralScopePrefixesIsThoseUnderIt) {
  std::shared_ptr<const AuthPolicy> policy =
      MustParse("uid:1 read jobs/ quota/ queue/ zzz\n");
  const Principal& p = policy->principals()[0];
  EXPECT_THAT(*ListRanges(p, ""), ElementsAre("jobs/", "queue/", "quota/", "zzz"));
  EXPECT_THAT(*ListRanges(p, "q"), ElementsAre("queue/", "quota/"));
  EXPECT_THAT(*ListRanges(p, "quo"), ElementsAre("quota/"));
}

TEST(AuthScopeTest, ListRangesOutsideTheScopeArePermissionDenied) {
  std::shared_ptr<const AuthPolicy> policy = MustParse("uid:1 read jobs/ quota/\n");
  const Principal& p = policy->principals()[0];
  for (const char* prefix : {"x", "jobsx", "jobs", "a/jobs/", "quota", "r"}) {
    absl::StatusOr<std::vector<std::string>> r = ListRanges(p, prefix);
    if (std::string_view(prefix) == "jobs" || std::string_view(prefix) == "quota") {
      // A proper prefix of a scope prefix holds in-scope keys: allowed.
      ASSERT_TRUE(r.ok()) << prefix;
      continue;
    }
    ASSERT_FALSE(r.ok()) << prefix;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kPermissionDenied);
    EXPECT_THAT(r.status().message(), HasSubstr(absl::StrCat("List prefix \"", prefix, "\"")));
  }
}

// ---- List over several ranges, on a real table ----

class ScopedListTest : public TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    table_ = MustCreate(1000);
    ASSERT_NE(table_, nullptr);
    for (const char* key : {"a", "jobs", "jobs/1", "jobs/2", "jobs/3", "jobsx", "queue/1",
                            "quota/1", "quota/2", "quota0", "r", "zzz"}) {
      ASSERT_TRUE(table_->Increment(key, 1).ok());
    }
  }
  std::vector<std::string> Keys(const std::vector<Counter>& page) {
    std::vector<std::string> out;
    for (const Counter& c : page) out.push_back(c.key);
    return out;
  }
  std::unique_ptr<CounterTable> table_;
};

TEST_F(ScopedListTest, ListsOnlyTheRangesSortedAcrossThem) {
  const std::vector<std::string> ranges = {"jobs/", "quota/"};
  EXPECT_THAT(Keys(ListInRanges(*table_, ranges, "", 100)),
              ElementsAre("jobs/1", "jobs/2", "jobs/3", "quota/1", "quota/2"));
}

TEST_F(ScopedListTest, PagesAreStableAcrossRangeBoundaries) {
  const std::vector<std::string> ranges = {"jobs/", "queue/", "quota/"};
  for (size_t page_size = 1; page_size <= 7; ++page_size) {
    std::vector<std::string> all;
    std::string after;
    for (int pages = 0; pages < 20; ++pages) {
      std::vector<Counter> page = ListInRanges(*table_, ranges, after, page_size);
      ASSERT_LE(page.size(), page_size);
      if (page.empty()) break;
      for (const Counter& c : page) all.push_back(c.key);
      after = page.back().key;
    }
    EXPECT_THAT(all, ElementsAre("jobs/1", "jobs/2", "jobs/3", "queue/1", "quota/1", "quota/2"))
        << "page size " << page_size;
  }
}

TEST_F(ScopedListTest, AStartAfterBetweenOrOutsideTheRangesSkipsOnlyWhatSortsBeforeIt) {
  const std::vector<std::string> ranges = {"jobs/", "quota/"};
  EXPECT_THAT(Keys(ListInRanges(*table_, ranges, "jobsx", 100)), ElementsAre("quota/1", "quota/2"));
  EXPECT_THAT(Keys(ListInRanges(*table_, ranges, "a", 100)),
              ElementsAre("jobs/1", "jobs/2", "jobs/3", "quota/1", "quota/2"));
  EXPECT_THAT(Keys(ListInRanges(*table_, ranges, "jobs/2", 100)),
              ElementsAre("jobs/3", "quota/1", "quota/2"));
  EXPECT_THAT(Keys(ListInRanges(*table_, ranges, "r", 100)), ElementsAre());
}

TEST_F(ScopedListTest, TheServiceListsOnlyInScopeKeysForEmptyPrefix) {
  CounterServiceImpl service(table_.get(), 100);
  counters::v1::ListRequest req;
  req.set_page_size(2);
  std::vector<std::string> all;
  for (int pages = 0; pages < 10; ++pages) {
    counters::v1::ListResponse resp;
    ASSERT_TRUE(service.DoListInRanges(req, {"jobs/", "quota/"}, &resp).ok());
    for (const auto& c : resp.counters()) all.push_back(c.key());
    if (resp.next_page_token().empty()) break;
    req.set_page_token(resp.next_page_token());
  }
  EXPECT_THAT(all, ElementsAre("jobs/1", "jobs/2", "jobs/3", "quota/1", "quota/2"));
}

// ---- The denial log ----

TEST(DenialLogTest, AtMostOneLinePerPrincipalPerInterval) {
  DenialLog log(absl::Seconds(1));
  const absl::Time t0 = absl::FromUnixSeconds(1000000);
  const absl::Status denied = absl::PermissionDeniedError("no");
  EXPECT_TRUE(log.Report("uid:1", "Get", denied, t0));
  EXPECT_FALSE(log.Report("uid:1", "Get", denied, t0 + absl::Milliseconds(10)));
  EXPECT_FALSE(log.Report("uid:1", "Set", denied, t0 + absl::Milliseconds(999)));
  EXPECT_TRUE(log.Report("uid:2", "Get", denied, t0 + absl::Milliseconds(10)));
  EXPECT_TRUE(log.Report("uid:1", "Get", denied, t0 + absl::Seconds(1)));
  EXPECT_FALSE(log.Report("uid:1", "Get", denied, t0 + absl::Milliseconds(1500)));
  EXPECT_TRUE(log.Report("uid:1", "Get", denied, t0 + absl::Seconds(3)));
}

// ---- Reload ----

class AccessControlReloadTest : public TempDirTest {
 protected:
  std::string WriteAuthFile(const std::string& text) {
    std::string path = Path("auth");
    std::ofstream(path, std::ios::trunc) << text;
    return path;
  }
};

TEST_F(AccessControlReloadTest, AGoodFileReplacesThePolicyABrokenOneKeepsIt) {
  const std::string path = WriteAuthFile(absl::StrCat(TokenPrincipal(kTokenA), " read\n"));
  absl::StatusOr<std::shared_ptr<const AuthPolicy>> initial = AuthPolicy::LoadFile(path);
  ASSERT_TRUE(initial.ok()) << initial.status();
  AccessControl ac(path, *initial);
  EXPECT_TRUE(ac.Admit(WithToken(kTokenA), RpcMethod::kGet).ok());
  EXPECT_EQ(ac.Admit(WithToken(kTokenA), RpcMethod::kSet).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(ac.Admit(WithToken(kTokenB), RpcMethod::kGet).status().code(),
            absl::StatusCode::kUnauthenticated);

  WriteAuthFile(absl::StrCat(TokenPrincipal(kTokenB), " write\n"));
  ASSERT_TRUE(ac.Reload().ok());
  EXPECT_TRUE(ac.Admit(WithToken(kTokenB), RpcMethod::kSet).ok());
  EXPECT_EQ(ac.Admit(WithToken(kTokenA), RpcMethod::kGet).status().code(),
            absl::StatusCode::kUnauthenticated);

  WriteAuthFile(absl::StrCat(TokenPrincipal(kTokenA), " superuser\n"));
  absl::Status broken = ac.Reload();
  EXPECT_THAT(broken.message(), HasSubstr(":1: unknown role \"superuser\""));
  EXPECT_TRUE(ac.Admit(WithToken(kTokenB), RpcMethod::kSet).ok());
  EXPECT_FALSE(ac.Admit(WithToken(kTokenA), RpcMethod::kGet).ok());
}

TEST_F(AccessControlReloadTest, AnAdmissionKeepsItsPolicyAcrossAReload) {
  const std::string path = WriteAuthFile("uid:5 write jobs/\n");
  AccessControl ac(path, *AuthPolicy::LoadFile(path));
  CallIdentity id;
  id.peer_uid = 5;
  absl::StatusOr<AccessControl::Admission> a = ac.Admit(id, RpcMethod::kIncrement);
  ASSERT_TRUE(a.ok());
  WriteAuthFile("uid:6 write\n");
  ASSERT_TRUE(ac.Reload().ok());
  // The call admitted before the reload finishes under its own policy.
  ASSERT_NE(a->principal, nullptr);
  EXPECT_EQ(a->principal->name, "uid:5");
  EXPECT_TRUE(ac.CheckKey(*a, RpcMethod::kIncrement, "jobs/1", "key").ok());
  EXPECT_EQ(ac.CheckKey(*a, RpcMethod::kIncrement, "x", "key").code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_FALSE(ac.Admit(id, RpcMethod::kIncrement).ok());
}

TEST(AccessControlTest, WithoutAnAuthFileEveryCallIsAdmitted) {
  AccessControl ac("", nullptr);
  EXPECT_FALSE(ac.enabled());
  absl::StatusOr<AccessControl::Admission> a = ac.Admit(CallIdentity{}, RpcMethod::kSnapshot);
  ASSERT_TRUE(a.ok());
  EXPECT_TRUE(ac.CheckKey(*a, RpcMethod::kSet, "any", "key").ok());
  EXPECT_THAT(*ac.ListRanges(*a, "p"), ElementsAre("p"));
}

// ---- Tokens ----

TEST(BearerTokenTest, NewTokensAre43Base64UrlCharactersAndDiffer) {
  absl::StatusOr<std::string> a = NewBearerToken(), b = NewBearerToken();
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->size(), 43u);
  EXPECT_NE(*a, *b);
  EXPECT_EQ(a->find_first_not_of(
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
            std::string::npos);
}

TEST(BearerTokenTest, TheHashIsSha256) {
  // sha256("test"), the issue's example line.
  EXPECT_EQ(TokenSha256Hex("test"),
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08");
  EXPECT_EQ(TokenPrincipal("test"),
            "token:sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08");
}

}  // namespace
}  // namespace countersd
