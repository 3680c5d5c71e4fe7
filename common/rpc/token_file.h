#pragma once
// TokenFile: bearer tokens read from a file and re-read when the file changes, so a token
// is rotated without restarting anything (a Kubernetes Secret update, an edited file).
// One token per non-empty line, surrounding whitespace ignored. The file's identity
// (inode, size, modification time) is checked at most once a second; a file that is
// unreadable or empty when it changes keeps the previous tokens (rotation must never lock
// every caller out) and is reported once per change through `log`. Thread-safe.

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"

namespace rlhf::rpc {

class TokenFile {
 public:
  using Tokens = std::vector<std::string>;

  // Reads `path` now. InvalidArgument "<flag>: cannot read <path>" / "<path> holds no
  // token" (never the contents).
  static absl::StatusOr<std::shared_ptr<TokenFile>> Open(
      const std::string& flag, const std::string& path,
      std::function<void(const std::string&)> log = nullptr);

  // The current tokens (re-read first when the file changed and a second has passed).
  std::shared_ptr<const Tokens> Current();

  // Re-checks the file now, regardless of the one-second limit (tests).
  void Refresh();

 private:
  TokenFile(std::string flag, std::string path, std::function<void(const std::string&)> log)
      : flag_(std::move(flag)), path_(std::move(path)), log_(std::move(log)) {}
  void RefreshLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);

  const std::string flag_, path_;
  const std::function<void(const std::string&)> log_;
  std::mutex mutex_;
  std::shared_ptr<const Tokens> tokens_ ABSL_GUARDED_BY(mutex_);
  std::string identity_ ABSL_GUARDED_BY(mutex_);  // inode:size:mtime of what was read
  std::chrono::steady_clock::time_point checked_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace rlhf::rpc
