// The few-row dense kernels (common/model/dense.h) against torch's linear / addmm.

#include "common/model/dense.h"

#include <ATen/Parallel.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <tuple>

namespace rlhf::model {
namespace {

// Max |a - b| against a float64 reference; fp32 sums of `in` products of N(0,1) values.
double MaxError(const torch::Tensor& got, const torch::Tensor& want) {
  return (got.to(torch::kFloat64) - want).abs().max().item<double>();
}
double Tolerance(int64_t in) { return 1e-6 * static_cast<double>(in + 16); }

class DenseShapes : public testing::TestWithParam<std::tuple<int64_t, int64_t, int64_t>> {};

TEST_P(DenseShapes, LinearMatchesTorch) {
  const auto [rows, in, out] = GetParam();
  torch::manual_seed(rows * 1000 + in + out);
  const torch::Tensor x = torch::randn({rows, in});
  const torch::Tensor weight = torch::randn({out, in});
  const torch::Tensor bias = torch::randn({out});
  const torch::Tensor want = torch::nn::functional::linear(
      x.to(torch::kFloat64), weight.to(torch::kFloat64), bias.to(torch::kFloat64));
  EXPECT_LE(MaxError(FewRowLinear(x, weight, bias), want), Tolerance(in));
  const torch::Tensor want_no_bias =
      torch::nn::functional::linear(x.to(torch::kFloat64), weight.to(torch::kFloat64));
  EXPECT_LE(MaxError(FewRowLinear(x, weight, {}), want_no_bias), Tolerance(in));
}

TEST_P(DenseShapes, AddmmMatchesTorch) {
  const auto [rows, in, out] = GetParam();
  torch::manual_seed(rows * 1000 + in + out + 7);
  const torch::Tensor x = torch::randn({rows, in});
  const torch::Tensor weight = torch::randn({in, out});
  const torch::Tensor bias = torch::randn({out});
  const torch::Tensor want =
      torch::addmm(bias.to(torch::kFloat64), x.to(torch::kFloat64), weight.to(torch::kFloat64));
  EXPECT_LE(MaxError(FewRowAddmmInOut(x, weight, bias), want), Tolerance(in));
  EXPECT_LE(MaxError(FewRowAddmmInOut(x, weight, {}),
                     x.to(torch::kFloat64).mm(weight.to(torch::kFloat64))),
            Tolerance(in));
}

// Rows 1..8 use one chunk, 9, 17 and 130 mix chunk sizes; 130 is past kDenseMaxRows. Shapes
// cover sizes below one vector (5, 7), vector tails (37, 130, 1000) and GPT-2's blocks.
INSTANTIATE_TEST_SUITE_P(Shapes, DenseShapes,
                         testing::Combine(testing::Values(1, 2, 3, 5, 8, 9, 17, 130),
                                          testing::Values(5, 37, 768),
                                          testing::Values(1, 7, 130, 1000, 2304)));

TEST(DenseTest, ResultDoesNotDependOnThreadsOrBatch) {
  torch::manual_seed(3);
  const torch::Tensor x = torch::randn({9, 300});
  const torch::Tensor w_out_in = torch::randn({3000, 300});
  const torch::Tensor w_in_out = torch::randn({300, 3000});
  const torch::Tensor bias = torch::randn({3000});
  const int threads = at::get_num_threads();
  at::set_num_threads(1);
  const torch::Tensor linear_one = FewRowLinear(x, w_out_in, bias);
  const torch::Tensor addmm_one = FewRowAddmmInOut(x, w_in_out, bias);
  at::set_num_threads(std::max(threads, 2));
  EXPECT_TRUE(torch::equal(FewRowLinear(x, w_out_in, bias), linear_one));
  EXPECT_TRUE(torch::equal(FewRowAddmmInOut(x, w_in_out, bias), addmm_one));
  at::set_num_threads(threads);
  // A row alone gives bitwise the same output as inside a batch: decoding one sequence or
  // many gives the same logits.
  for (int64_t r : {0, 4, 8}) {
    const torch::Tensor row = x.slice(0, r, r + 1);
    EXPECT_TRUE(torch::equal(FewRowLinear(row, w_out_in, bias), linear_one.slice(0, r, r + 1)));
    EXPECT_TRUE(torch::equal(FewRowAddmmInOut(row, w_in_out, bias), addmm_one.slice(0, r, r + 1)));
  }
}

TEST(DenseTest, StridedRowsAndLeadingDims) {
  torch::manual_seed(4);
  // The last position of each sequence: rows 7 * 64 floats apart.
  const torch::Tensor hidden = torch::randn({3, 7, 64});
  const torch::Tensor last = hidden.select(1, -1);
  ASSERT_FALSE(last.is_contiguous());
  const torch::Tensor weight = torch::randn({50, 64});
  EXPECT_TRUE(torch::allclose(Linear(last, weight), last.matmul(weight.t()), 1e-5, 1e-5));
  // [B, T, in] keeps its leading dims.
  const torch::Tensor out = Linear(hidden.slice(1, 0, 2), weight);
  EXPECT_EQ(out.sizes(), (std::vector<int64_t>{3, 2, 50}));
  EXPECT_TRUE(torch::allclose(out, hidden.slice(1, 0, 2).matmul(weight.t()), 1e-5, 1e-5));
}

TEST(DenseTest, FastPathOnlyWhereItApplies) {
  const torch::Tensor weight = torch::randn({16, 8});
  const torch::Tensor bias = torch::randn({16});
  EXPECT_TRUE(DenseFastPath(torch::randn({kDenseMaxRows, 8}), weight, bias));
  EXPECT_TRUE(DenseFastPath(torch::randn({2, 4, 8}), weight, {}));
  EXPECT_FALSE(DenseFastPath(torch::randn({kDenseMaxRows + 1, 8}), weight, bias));
  EXPECT_FALSE(DenseFastPath(torch::randn({0, 8}), weight, bias));
  EXPECT_FALSE(
      DenseFastPath(torch::randn({1, 8}, torch::kBFloat16), weight.to(torch::kBFloat16), {}));
  EXPECT_FALSE(DenseFastPath(torch::randn({1, 16}), weight.t(), {}));  // not contiguous
  // Autograd needs torch's op; under no_grad the same parameters take the fast path.
  const torch::Tensor param = weight.clone().requires_grad_(true);
  EXPECT_FALSE(DenseFastPath(torch::randn({1, 8}), param, bias));
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(DenseFastPath(torch::randn({1, 8}), param, bias));
}

TEST(DenseTest, TrainingGetsGradients) {
  torch::manual_seed(5);
  const torch::Tensor weight = torch::randn({6, 4}, torch::requires_grad());
  const torch::Tensor x = torch::randn({1, 4});
  Linear(x, weight).sum().backward();
  ASSERT_TRUE(weight.grad().defined());
  EXPECT_TRUE(torch::allclose(weight.grad(), x.expand({6, 4})));
}

TEST(DenseTest, ShapeMismatchIsTorchsError) {
  EXPECT_THROW(Linear(torch::randn({1, 5}), torch::randn({3, 4})), c10::Error);
  EXPECT_THROW(AddmmInOut(torch::randn({1, 5}), torch::randn({4, 3}), torch::randn({3})),
               c10::Error);
  EXPECT_THROW(FewRowLinear(torch::randn({1, 4}), torch::randn({3, 4}), torch::randn({4})),
               c10::Error);
  EXPECT_THROW(FewRowAddmmInOut(torch::randn({1, 4}, torch::kFloat64),
                                torch::randn({4, 3}, torch::kFloat64), {}),
               c10::Error);
}

}  // namespace
}  // namespace rlhf::model
