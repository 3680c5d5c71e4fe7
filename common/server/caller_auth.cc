#include "common/server/caller_auth.h"

#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

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
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  if (in) text << in.rdbuf();
  if (!in || in.bad()) {
    return absl::InvalidArgumentError(absl::StrCat("cannot read the token file ", path));
  }
  CallerAuth auth;
  for (absl::string_view line : absl::StrSplit(text.str(), '\n')) {
    const std::string token(absl::StripAsciiWhitespace(line));
    if (!token.empty()) auth.tokens_.push_back(token);
  }
  if (auth.tokens_.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("the token file ", path, " holds no token"));
  }
  return auth;
}

grpc::Status CallerAuth::Check(const grpc::ServerContextBase& context) const {
  if (tokens_.empty()) return grpc::Status::OK;
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
    for (const std::string& token : tokens_) accepted |= ConstantTimeEquals(presented, token);
  }
  if (!accepted) return {grpc::StatusCode::UNAUTHENTICATED, "invalid bearer token"};
  return grpc::Status::OK;
}

}  // namespace rlhf::server
