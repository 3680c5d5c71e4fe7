#include "common/server/caller_auth.h"

#include <iostream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace rlhf::server {

bool ConstantTimeEquals(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff |= static_cast<unsigned char>(a[i]) ^ static_cast<unsigned char>(b[i]);
  }
  return diff == 0;
}

absl::StatusOr<CallerAuth> CallerAuth::FromFile(const std::string& path) {
  auto file = rpc::TokenFile::Open("--auth-token-file", path, [](const std::string& line) {
    std::cerr << "rlhf: " << line << std::endl;
  });
  if (!file.ok()) return file.status();
  CallerAuth auth;
  auth.file_ = *std::move(file);
  return auth;
}

grpc::Status CallerAuth::Check(const grpc::ServerContextBase& context) const {
  if (file_ == nullptr) return grpc::Status::OK;
  const auto& metadata = context.client_metadata();
  const auto found = metadata.find("authorization");
  if (found == metadata.end()) {
    return {grpc::StatusCode::UNAUTHENTICATED,
            "missing 'authorization: Bearer <token>' metadata (pass --token-file)"};
  }
  const std::string value(found->second.data(), found->second.size());
  constexpr char kBearer[] = "Bearer ";
  bool accepted = false;
  if (absl::StartsWith(value, kBearer)) {
    const std::string presented = value.substr(sizeof(kBearer) - 1);
    // Check every token, so the time does not say which one (if any) matched.
    const std::shared_ptr<const rpc::TokenFile::Tokens> tokens = file_->Current();
    for (const std::string& token : *tokens) accepted |= ConstantTimeEquals(presented, token);
  }
  if (!accepted) return {grpc::StatusCode::UNAUTHENTICATED, "invalid bearer token"};
  return grpc::Status::OK;
}

}  // namespace rlhf::server
