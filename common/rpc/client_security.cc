#include "common/rpc/client_security.h"

#include <iostream>
#include <utility>
#include <vector>

#include <grpcpp/create_channel.h>
#include <grpcpp/support/client_interceptor.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/rpc/pem_file.h"

namespace rlhf::rpc {
namespace {

namespace gx = grpc::experimental;

// Adds the authorization metadata to every call of the channel.
class BearerTokenInterceptor final : public gx::Interceptor {
 public:
  explicit BearerTokenInterceptor(std::string header) : header_(std::move(header)) {}
  void Intercept(gx::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            gx::InterceptionHookPoints::PRE_SEND_INITIAL_METADATA)) {
      methods->GetSendInitialMetadata()->insert({"authorization", header_});
    }
    methods->Proceed();
  }

 private:
  const std::string header_;
};

// One interceptor per call, with the token current when the call starts.
class BearerTokenFactory final : public gx::ClientInterceptorFactoryInterface {
 public:
  BearerTokenFactory(std::shared_ptr<TokenFile> file, std::string token)
      : file_(std::move(file)), token_(std::move(token)) {}
  gx::Interceptor* CreateClientInterceptor(gx::ClientRpcInfo*) override {
    return new BearerTokenInterceptor("Bearer " +
                                      (file_ != nullptr ? file_->Current()->front() : token_));
  }

 private:
  const std::shared_ptr<TokenFile> file_;  // the factory lives as long as the channel
  const std::string token_;
};

}  // namespace

std::shared_ptr<grpc::Channel> MakeChannel(const std::string& address,
                                           const ClientSecurity& security,
                                           const grpc::ChannelArguments& args) {
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
  grpc::ChannelArguments channel_args = args;
  if (security.tls) {
    grpc::SslCredentialsOptions tls;
    tls.pem_root_certs = security.ca_pem;
    tls.pem_cert_chain = security.cert_pem;
    tls.pem_private_key = security.key_pem;
    credentials = grpc::SslCredentials(tls);
    if (!security.server_name.empty()) channel_args.SetSslTargetNameOverride(security.server_name);
  }
  std::vector<std::unique_ptr<gx::ClientInterceptorFactoryInterface>> interceptors;
  if (security.token_file != nullptr || !security.token.empty()) {
    interceptors.push_back(
        std::make_unique<BearerTokenFactory>(security.token_file, security.token));
  }
  return gx::CreateCustomChannelWithInterceptors(address, credentials, channel_args,
                                                 std::move(interceptors));
}

void ClientSecurityFlags::Register(cli::FlagSet& flags, const std::string& prefix) {
  using cli::EnvOr;
  prefix_ = prefix;
  const std::string env =
      absl::StrCat("RLHF_", absl::AsciiStrToUpper(absl::StrReplaceAll(prefix, {{"-", "_"}})));
  const std::string to = prefix.empty() ? "the server" : "the model services";
  token_file = EnvOr(env + "TOKEN_FILE", "");
  tls_ca = EnvOr(env + "TLS_CA", "");
  tls_cert = EnvOr(env + "TLS_CERT", "");
  tls_key = EnvOr(env + "TLS_KEY", "");
  tls_server_name = EnvOr(env + "TLS_SERVER_NAME", "");
  flags.String(prefix + "token-file", &token_file,
               absl::StrCat("file whose first line is the bearer token sent to ", to, "; env ", env,
                            "TOKEN_FILE"));
  flags.String(prefix + "tls-ca", &tls_ca,
               absl::StrCat("PEM CA bundle that signed ", to, "'s certificate: speak TLS; env ",
                            env, "TLS_CA"));
  flags.String(prefix + "tls-cert", &tls_cert,
               absl::StrCat("PEM client certificate for mTLS (with --", prefix, "tls-key); env ",
                            env, "TLS_CERT"));
  flags.String(prefix + "tls-key", &tls_key,
               absl::StrCat("PEM private key of --", prefix, "tls-cert; env ", env, "TLS_KEY"));
  flags.String(prefix + "tls-server-name", &tls_server_name,
               absl::StrCat("name to verify in ", to, "'s certificate instead of the host; env ",
                            env, "TLS_SERVER_NAME"));
}

absl::StatusOr<ClientSecurity> ClientSecurityFlags::Load() const {
  const std::string flag = "--" + prefix_;
  ClientSecurity security;
  if (!token_file.empty()) {
    auto file = TokenFile::Open(flag + "token-file", token_file, [](const std::string& line) {
      std::cerr << "rlhf: " << line << std::endl;
    });
    if (!file.ok()) return file.status();
    security.token_file = *std::move(file);
  }
  if (tls_cert.empty() != tls_key.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, "tls-cert and ", flag, "tls-key go together"));
  }
  if (tls_ca.empty()) {
    if (!tls_cert.empty() || !tls_server_name.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(flag, "tls-cert/", flag, "tls-server-name need ", flag, "tls-ca (TLS)"));
    }
    return security;
  }
  security.tls = true;
  security.server_name = tls_server_name;
  auto ca = ReadPemFile(flag + "tls-ca", tls_ca);
  if (!ca.ok()) return ca.status();
  security.ca_pem = *std::move(ca);
  if (!tls_cert.empty()) {
    auto cert = ReadPemFile(flag + "tls-cert", tls_cert);
    if (!cert.ok()) return cert.status();
    auto key = ReadPemFile(flag + "tls-key", tls_key);
    if (!key.ok()) return key.status();
    security.cert_pem = *std::move(cert);
    security.key_pem = *std::move(key);
  }
  return security;
}

}  // namespace rlhf::rpc
