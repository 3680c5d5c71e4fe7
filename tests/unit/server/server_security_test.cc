// Caller authentication and TLS of every server (common/server/caller_auth.h,
// server_credentials.h) and of every client (common/rpc/client_security.h), over real
// gRPC on loopback with certificates made by scripts/make_test_certs.sh (openssl).

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "common/rpc/client_security.h"
#include "common/rpc/tensor_codec.h"
#include "common/server/server_credentials.h"
#include "common/server/server_runner.h"
#include "rlhf/testing/echo.grpc.pb.h"
#include "tests/unit/server/server_test_util.h"
#include "tests/unit/testing/temp_dir.h"

namespace rlhf::server {
namespace {

using grpc::health::v1::HealthCheckResponse;
using ::testing::HasSubstr;

// Doubles a tensor; counts the calls whose work ran.
class EchoService final : public rlhf::testing::TensorEcho::CallbackService {
 public:
  explicit EchoService(RpcExecutor executor) : executor_(std::move(executor)) {}
  grpc::ServerUnaryReactor* Double(grpc::CallbackServerContext* context,
                                   const v1::TensorProto* request,
                                   v1::TensorProto* response) override {
    return executor_.Unary(context, "Double", response, [this, request, response] {
      ++ran;
      auto tensor = rpc::TensorFromProto(*request);
      if (!tensor.ok()) return tensor.status();
      return rpc::TensorToProto(*tensor * 2, response);
    });
  }
  std::atomic<int> ran{0};

 private:
  RpcExecutor executor_;
};

class ServerSecurityTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test_support::TempDir("rlhf_certs");
    const std::string command =
        std::string(RLHF_SOURCE_DIR) + "/scripts/make_test_certs.sh " + dir_->path().string();
    ASSERT_EQ(std::system(command.c_str()), 0) << command;
  }
  static void TearDownTestSuite() { delete dir_; }
  static std::string File(const std::string& name) { return (dir_->path() / name).string(); }
  static std::string Pem(const std::string& name) {
    std::ifstream in(File(name));
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  // Starts a server with `options` (loopback port 0, no metrics).
  absl::Status Start(ServerOptions options) {
    runner_ = std::make_unique<ServerRunner>(std::move(options));
    service_ = std::make_unique<EchoService>(runner_->Executor("rlhf.testing.TensorEcho"));
    runner_->AddService(service_.get());
    absl::Status started = runner_->Start();
    if (started.ok()) runner_->SetServing(true);
    return started;
  }

  static ServerOptions Options() { return testing::LoopbackOptions(/*metrics=*/false); }

  std::shared_ptr<grpc::Channel> Channel(const rpc::ClientSecurity& security,
                                         const std::string& host = "127.0.0.1") {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    return rpc::MakeChannel(host + ":" + std::to_string(runner_->port()), security, args);
  }

  static grpc::Status Call(const std::shared_ptr<grpc::Channel>& channel) {
    auto stub = rlhf::testing::TensorEcho::NewStub(channel);
    grpc::ClientContext context;
    context.set_deadline(testing::DeadlineIn(std::chrono::seconds(5)));
    v1::TensorProto request, response;
    EXPECT_TRUE(rpc::TensorToProto(torch::ones({2}), &request).ok());
    return stub->Double(&context, request, &response);
  }

  static rpc::ClientSecurity Tls(const std::string& client = "") {
    rpc::ClientSecurity security;
    security.tls = true;
    security.ca_pem = Pem("ca.pem");
    if (!client.empty()) {
      security.cert_pem = Pem(client + ".pem");
      security.key_pem = Pem(client + ".key");
    }
    return security;
  }

  static test_support::TempDir* dir_;
  std::unique_ptr<ServerRunner> runner_;
  std::unique_ptr<EchoService> service_;
};

test_support::TempDir* ServerSecurityTest::dir_ = nullptr;

TEST_F(ServerSecurityTest, TokensAreCheckedBeforeAnyWorkAndHealthStaysOpen) {
  const std::string tokens = File("tokens");
  std::ofstream(tokens) << "  old-token \n\nnew-token\n";
  ServerOptions options = Options();
  options.auth_token_file = tokens;
  ASSERT_TRUE(Start(options).ok());

  rpc::ClientSecurity none, wrong, old_token, new_token, prefix;
  wrong.token = "not-a-token";
  old_token.token = "old-token";
  new_token.token = "new-token";
  prefix.token = "new-tok";
  for (const auto* denied : {&none, &wrong, &prefix}) {
    grpc::Status status = Call(Channel(*denied));
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED) << denied->token;
    EXPECT_THAT(status.error_message(), ::testing::Not(HasSubstr("new-token")));
  }
  EXPECT_EQ(service_->ran.load(), 0);
  // Both lines are accepted (rotation); surrounding whitespace is not part of a token.
  EXPECT_TRUE(Call(Channel(old_token)).ok());
  EXPECT_TRUE(Call(Channel(new_token)).ok());
  EXPECT_EQ(service_->ran.load(), 2);
  EXPECT_EQ(testing::CheckHealth(Channel(none)), HealthCheckResponse::SERVING);
  EXPECT_EQ(testing::CheckHealth(Channel(none), "rlhf.testing.TensorEcho"),
            HealthCheckResponse::SERVING);
}

// Replaces `path`'s contents the way a Kubernetes Secret update does (a new file renamed
// over the old one), so the change is visible whatever the file system's timestamps.
void Rewrite(const std::string& path, const std::string& text) {
  std::ofstream(path + ".new") << text;
  std::filesystem::rename(path + ".new", path);
}

TEST_F(ServerSecurityTest, RotatedTokenFilesAreReReadWithoutARestart) {
  const std::string server_tokens = File("rotating-server"), client_token = File("rotating-client");
  std::ofstream(server_tokens) << "alpha\n";
  std::ofstream(client_token) << "alpha\n";
  ServerOptions options = Options();
  options.auth_token_file = server_tokens;
  ASSERT_TRUE(Start(options).ok());
  rpc::ClientSecurityFlags flags;
  flags.token_file = client_token;
  auto client = flags.Load();
  ASSERT_TRUE(client.ok()) << client.status();
  auto channel = Channel(*client);
  EXPECT_TRUE(Call(channel).ok());

  // Rotation, step by step: the server accepts both, the client moves, the old one goes.
  Rewrite(server_tokens, "alpha\nbeta\n");
  Rewrite(client_token, "beta\n");
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // files are checked each second
  EXPECT_TRUE(Call(channel).ok());                               // the same channel now sends beta
  Rewrite(server_tokens, "beta\n");
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  EXPECT_TRUE(Call(channel).ok());
  rpc::ClientSecurity alpha;
  alpha.token = "alpha";
  EXPECT_EQ(Call(Channel(alpha)).error_code(), grpc::StatusCode::UNAUTHENTICATED);

  // A file emptied (or half-written) by mistake keeps the previous tokens: nobody is locked out.
  Rewrite(server_tokens, "\n");
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  EXPECT_TRUE(Call(channel).ok());
  EXPECT_EQ(Call(Channel(alpha)).error_code(), grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(ServerSecurityTest, TlsServesOnlyTlsClientsThatTrustItsCa) {
  ServerOptions options = Options();
  options.tls_cert_file = File("server.pem");
  options.tls_key_file = File("server.key");
  ASSERT_TRUE(Start(options).ok());
  EXPECT_TRUE(Call(Channel(Tls())).ok());
  EXPECT_TRUE(Call(Channel(Tls(), "localhost")).ok());
  EXPECT_FALSE(Call(Channel(rpc::ClientSecurity{})).ok());  // plaintext
  rpc::ClientSecurity other_ca = Tls();
  other_ca.ca_pem = Pem("other-ca.pem");
  EXPECT_FALSE(Call(Channel(other_ca)).ok());
  rpc::ClientSecurity wrong_name = Tls();
  wrong_name.server_name = "coordinator.example";  // not in the certificate
  EXPECT_FALSE(Call(Channel(wrong_name)).ok());
  EXPECT_EQ(service_->ran.load(), 2);
}

TEST_F(ServerSecurityTest, MutualTlsRefusesMissingAndForeignClientCertificates) {
  ServerOptions options = Options();
  options.listen_address = "0.0.0.0:0";  // mTLS authenticates: no token needed
  options.tls_cert_file = File("server.pem");
  options.tls_key_file = File("server.key");
  options.tls_client_ca_file = File("ca.pem");
  ASSERT_TRUE(Start(options).ok());
  EXPECT_TRUE(Call(Channel(Tls("client"))).ok());
  EXPECT_FALSE(Call(Channel(Tls())).ok());
  EXPECT_FALSE(Call(Channel(Tls("other-client"))).ok());
  EXPECT_EQ(service_->ran.load(), 1);
}

TEST_F(ServerSecurityTest, NonLoopbackWithoutAuthenticationIsRefusedUnlessAskedFor) {
  ServerOptions options = Options();
  options.listen_address = "0.0.0.0:0";
  absl::Status refused = Start(options);
  EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.message(), HasSubstr("--insecure-no-auth"));
  options.insecure_no_auth = true;
  EXPECT_TRUE(Start(options).ok());
  options.insecure_no_auth = false;
  options.auth_token_file = File("token");
  EXPECT_TRUE(Start(options).ok());

  EXPECT_TRUE(IsLoopbackAddress("127.0.0.1:50051"));
  EXPECT_TRUE(IsLoopbackAddress("127.1.2.3:0"));
  EXPECT_TRUE(IsLoopbackAddress("[::1]:50051"));
  EXPECT_TRUE(IsLoopbackAddress("localhost:1"));
  EXPECT_FALSE(IsLoopbackAddress("0.0.0.0:50051"));
  EXPECT_FALSE(IsLoopbackAddress("[::]:50051"));
  EXPECT_FALSE(IsLoopbackAddress("10.0.0.7:50051"));
  EXPECT_FALSE(IsLoopbackAddress(":50051"));
  EXPECT_FALSE(IsLoopbackAddress("127.example.com:1"));
}

TEST_F(ServerSecurityTest, BadSecurityFilesAreErrorsNamingTheFlagNotTheContents) {
  const std::string empty = File("empty"), not_pem = File("not-pem");
  std::ofstream(empty) << "\n  \n";
  std::ofstream(not_pem) << "secret-material";
  struct Case {
    std::function<void(ServerOptions&)> set;
    std::string message;
  };
  const std::vector<Case> cases = {
      {[&](ServerOptions& o) { o.auth_token_file = File("missing"); }, "cannot read"},
      {[&](ServerOptions& o) { o.auth_token_file = empty; }, "holds no token"},
      {[&](ServerOptions& o) { o.tls_cert_file = File("server.pem"); }, "--tls-key go together"},
      {[&](ServerOptions& o) { o.tls_client_ca_file = File("ca.pem"); }, "needs --tls-cert"},
      {[&](ServerOptions& o) {
         o.tls_cert_file = not_pem;
         o.tls_key_file = File("server.key");
       },
       "--tls-cert: " + not_pem + " is not a PEM file"},
  };
  for (const Case& c : cases) {
    ServerOptions options = Options();
    c.set(options);
    absl::Status status = Start(options);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << c.message;
    EXPECT_THAT(status.message(), HasSubstr(c.message));
    EXPECT_THAT(status.message(), ::testing::Not(HasSubstr("secret-material")));
  }
  // A certificate with another certificate's key does not start a server.
  ServerOptions mismatched = Options();
  mismatched.tls_cert_file = File("server.pem");
  mismatched.tls_key_file = File("client.key");
  EXPECT_FALSE(Start(mismatched).ok());
}

TEST_F(ServerSecurityTest, ClientFlagsLoadTheirFilesOrSayWhichIsWrong) {
  const std::string token = File("token"), not_pem = File("not-pem2");
  std::ofstream(not_pem) << "x";
  rpc::ClientSecurityFlags flags;
  cli::FlagSet set("test", "");
  flags.Register(set, "service-");
  const std::vector<std::string> args = {"--service-token-file", token,
                                         "--service-tls-ca",     File("ca.pem"),
                                         "--service-tls-cert",   File("client.pem"),
                                         "--service-tls-key",    File("client.key")};
  ASSERT_TRUE(set.Parse(args).ok());
  auto loaded = flags.Load();
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_NE(loaded->token_file, nullptr);
  EXPECT_EQ(loaded->token_file->Current()->front().size(), 48u);  // `openssl rand -hex 24`
  EXPECT_TRUE(loaded->tls);
  EXPECT_EQ(loaded->cert_pem, Pem("client.pem"));

  flags.tls_key.clear();
  EXPECT_THAT(flags.Load().status().message(), HasSubstr("--service-tls-cert and"));
  flags.tls_cert.clear();
  flags.tls_ca = not_pem;
  EXPECT_THAT(flags.Load().status().message(),
              HasSubstr("--service-tls-ca: " + not_pem + " is not a PEM file"));
  flags.tls_ca.clear();
  flags.token_file = File("nope");
  EXPECT_THAT(flags.Load().status().message(), HasSubstr("--service-token-file: cannot read"));
}

TEST(ConstantTimeEqualsTest, ComparesWholeStrings) {
  EXPECT_TRUE(ConstantTimeEquals("abc", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abd"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "ab"));
  EXPECT_FALSE(ConstantTimeEquals("", "a"));
  EXPECT_TRUE(ConstantTimeEquals("", ""));
}

}  // namespace
}  // namespace rlhf::server
