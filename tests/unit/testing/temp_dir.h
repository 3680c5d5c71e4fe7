#pragma once

// A fresh directory under the system temp dir, removed (with its contents) at scope exit.
// Shared by the unit tests of every area.

#include <filesystem>
#include <random>
#include <string>
#include <system_error>

namespace rlhf::test_support {

class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "rlhf_test") {
    std::random_device random;
    path_ = std::filesystem::temp_directory_path() /
            (prefix + "_" + std::to_string(random()) + std::to_string(random()));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace rlhf::test_support
