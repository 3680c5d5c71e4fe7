#include "common/rpc/token_file.h"

#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace rlhf::rpc {
namespace {

// Empty when the file cannot be stat'ed.
std::string Identity(const std::string& path) {
  struct stat info {};
  if (stat(path.c_str(), &info) != 0) return "";
  return absl::StrCat(info.st_ino, ":", info.st_size, ":", info.st_mtim.tv_sec, ".",
                      info.st_mtim.tv_nsec);
}

// The tokens in `path`, or an error naming `flag` and `path` (never the contents).
absl::StatusOr<TokenFile::Tokens> ReadTokens(const std::string& flag, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  if (in) text << in.rdbuf();
  if (!in || in.bad()) {
    return absl::InvalidArgumentError(absl::StrCat(flag, ": cannot read ", path));
  }
  TokenFile::Tokens tokens;
  for (absl::string_view line : absl::StrSplit(text.str(), '\n')) {
    std::string token(absl::StripAsciiWhitespace(line));
    if (!token.empty()) tokens.push_back(std::move(token));
  }
  if (tokens.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(flag, ": ", path, " holds no token"));
  }
  return tokens;
}

}  // namespace

absl::StatusOr<std::shared_ptr<TokenFile>> TokenFile::Open(
    const std::string& flag, const std::string& path, std::function<void(const std::string&)> log) {
  const std::string identity = Identity(path);
  auto tokens = ReadTokens(flag, path);
  if (!tokens.ok()) return tokens.status();
  std::shared_ptr<TokenFile> file(new TokenFile(flag, path, std::move(log)));
  std::lock_guard<std::mutex> lock(file->mutex_);
  file->tokens_ = std::make_shared<const Tokens>(*std::move(tokens));
  file->identity_ = identity;
  file->checked_ = std::chrono::steady_clock::now();
  return file;
}

std::shared_ptr<const TokenFile::Tokens> TokenFile::Current() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (std::chrono::steady_clock::now() - checked_ >= std::chrono::seconds(1)) RefreshLocked();
  return tokens_;
}

void TokenFile::Refresh() {
  std::lock_guard<std::mutex> lock(mutex_);
  RefreshLocked();
}

void TokenFile::RefreshLocked() {
  checked_ = std::chrono::steady_clock::now();
  const std::string identity = Identity(path_);
  if (identity == identity_) return;
  identity_ = identity;  // report a bad change once, not every second
  auto tokens = ReadTokens(flag_, path_);
  if (!tokens.ok()) {
    if (log_) log_(absl::StrCat(tokens.status().message(), "; keeping the previous tokens"));
    return;
  }
  tokens_ = std::make_shared<const Tokens>(*std::move(tokens));
  if (log_) log_(absl::StrCat(flag_, ": re-read ", path_, " (", tokens_->size(), " tokens)"));
}

}  // namespace rlhf::rpc
