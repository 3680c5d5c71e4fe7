#pragma once
// Helpers shared by the rlhf_jobs tests.

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>

#include <unistd.h>

#include "rlhf/v1/job.pb.h"

namespace rlhf::jobs::testing {

// A small valid spec for the store tests (the store keeps specs; it does not validate).
inline v1::JobSpec StoredSpec(const std::string& name) {
  v1::JobSpec spec;
  spec.set_name(name);
  spec.set_algorithm("dpo");
  spec.mutable_models()->set_policy_dir("examples/models/tiny-gpt2");
  spec.mutable_optimizer()->set_learning_rate(1e-6);
  return spec;
}

// A fresh empty directory under the test temp dir, removed at destruction.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    path_ = std::filesystem::path(::testing::TempDir()) /
            ("rlhf_jobs_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string File(const std::string& name) const { return (path_ / name).string(); }
  // Writes `content` to `name` and returns its path.
  std::string Write(const std::string& name, const std::string& content) const {
    std::ofstream(File(name), std::ios::binary) << content;
    return File(name);
  }

 private:
  std::filesystem::path path_;
};

inline std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace rlhf::jobs::testing
