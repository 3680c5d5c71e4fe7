// The dense-path calibration is measured once per machine, thread count and product shape,
// and cached: a cached line decides without measuring (bucket by bucket), a shape or
// thread count without one is measured once and appended, and the model's Linear follows
// the decision (bitwise equal to the path it names). Its own binary: the decision table
// is process-wide.

#include <ATen/Parallel.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "common/model/dense.h"
#include "common/model/dense_calibration.h"

namespace rlhf::model {
namespace {

namespace fs = std::filesystem;

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST(DenseCalibrationTest, ACachedLineDecidesAndAMissingShapeIsMeasuredOnce) {
  const fs::path dir = fs::path(::testing::TempDir()) / "rlhf_dense_calibration_test";
  fs::remove_all(dir);
  fs::create_directories(dir);
  ASSERT_EQ(setenv("RLHF_CACHE_DIR", dir.c_str(), 1), 0);
  ASSERT_EQ(unsetenv("RLHF_DENSE_FAST_PATH"), 0);
  at::set_num_threads(1);
  const fs::path file = dir / "dense-calibration-v2.tsv";
  const std::string machine = DenseCalibrationMachineKey();
  const std::string cached = machine + "\t1\tlinear\t32\t64\t1,0,1,0,1,0,1,0\n" + machine +
                             "\t1\taddmm\t32\t64\t0,1,1,0,0,1,1,0\n";
  std::ofstream(file) << cached;

  torch::manual_seed(0);
  const torch::Tensor linear_w = torch::randn({64, 32}), addmm_w = torch::randn({32, 64});
  const torch::Tensor b = torch::randn({64});
  // Buckets: 1 | 2 | 3-4 | 5-8 | 9-16 | 17-32 | 33-64 | 65-128.
  const int64_t rows[] = {1, 2, 3, 4, 5, 8, 9, 16, 17, 32, 33, 64, 65, 128};
  const bool linear[] = {1, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0};
  const bool addmm[] = {0, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 0, 0};
  for (size_t i = 0; i < std::size(rows); ++i) {
    EXPECT_EQ(FewRowKernelWins(DenseLayout::kLinear, linear_w, b, rows[i]), linear[i]) << rows[i];
    EXPECT_EQ(FewRowKernelWins(DenseLayout::kAddmm, addmm_w, b, rows[i]), addmm[i]) << rows[i];
  }
  EXPECT_EQ(ReadFile(file), cached);  // nothing measured

  // Linear takes the path the table names for its row count, bit for bit.
  for (const int64_t n : {1, 2}) {
    const torch::Tensor x = torch::randn({n, 32});
    const torch::Tensor expected =
        n == 1 ? FewRowLinear(x, linear_w, b) : at::linear(x, linear_w, b);
    EXPECT_TRUE(torch::equal(Linear(x, linear_w, b), expected)) << n;
  }

  // Another shape, then another thread count: each measured once and appended.
  const torch::Tensor other = torch::randn({48, 32});
  FewRowKernelWins(DenseLayout::kLinear, other, {}, 1);
  at::set_num_threads(2);
  FewRowKernelWins(DenseLayout::kLinear, linear_w, b, 1);
  const std::string after = ReadFile(file);
  ASSERT_EQ(after.rfind(cached, 0), 0u) << after;
  const std::string added = after.substr(cached.size());
  EXPECT_EQ(std::count(added.begin(), added.end(), '\n'), 2) << added;
  EXPECT_NE(added.find(machine + "\t1\tlinear\t32\t48\t"), std::string::npos) << added;
  EXPECT_NE(added.find(machine + "\t2\tlinear\t32\t64\t"), std::string::npos) << added;
  FewRowKernelWins(DenseLayout::kLinear, linear_w, b, 128);
  at::set_num_threads(1);
  FewRowKernelWins(DenseLayout::kLinear, other, {}, 64);
  EXPECT_EQ(ReadFile(file), after);  // measured once per shape and thread count
}

}  // namespace
}  // namespace rlhf::model
