#pragma once

// Helpers shared by the common/algo tests: golden fixture loading and comparison, status
// unwrapping, and a finite-difference gradient check in float64.

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"

namespace rlhf::algo::testing {

inline std::filesystem::path GoldenDir() {
  return std::filesystem::path(RLHF_SOURCE_DIR) / "tests/golden/fixtures/algo";
}

inline nlohmann::json LoadGolden(const std::string& family) {
  std::ifstream in(GoldenDir() / (family + ".json"));
  EXPECT_TRUE(in.good()) << "missing fixture " << family
                         << ".json: run tests/golden/make_algo_goldens.py";
  return nlohmann::json::parse(in);
}

// {"dtype", "shape", "data"} -> tensor; float64 data becomes `float_type`.
inline torch::Tensor TensorFromJson(const nlohmann::json& j, torch::ScalarType float_type) {
  std::vector<int64_t> shape = j.at("shape").get<std::vector<int64_t>>();
  const std::string dtype = j.at("dtype").get<std::string>();
  if (dtype == "float64") {
    std::vector<double> data = j.at("data").get<std::vector<double>>();
    return torch::tensor(data, torch::kDouble).reshape(shape).to(float_type);
  }
  std::vector<int64_t> data = j.at("data").get<std::vector<int64_t>>();
  torch::Tensor t = torch::tensor(data, torch::kLong).reshape(shape);
  return dtype == "bool" ? t.to(torch::kBool) : t;
}

template <typename T>
T Unwrap(absl::StatusOr<T> s) {
  EXPECT_TRUE(s.ok()) << s.status();
  if (!s.ok()) throw std::runtime_error(std::string(s.status().message()));
  return *std::move(s);
}

// Max |a - b| / max(1, |b|) over all elements (both made double).
inline double MaxScaledError(const torch::Tensor& actual, const torch::Tensor& expected) {
  const torch::Tensor a = actual.detach().to(torch::kDouble).reshape(expected.sizes());
  const torch::Tensor e = expected.to(torch::kDouble);
  if (e.numel() == 0) return 0;
  return ((a - e).abs() / e.abs().clamp_min(1.0)).max().item<double>();
}

// Central finite differences of the scalar fn(inputs) w.r.t. each of `inputs` (float64,
// small), against autograd's gradient. Inputs are cloned with requires_grad.
inline void ExpectGradientsMatch(
    const std::function<torch::Tensor(const std::vector<torch::Tensor>&)>& fn,
    std::vector<torch::Tensor> inputs, double tolerance = 1e-6, double step = 1e-6) {
  std::vector<torch::Tensor> vars;
  for (auto& x : inputs) vars.push_back(x.detach().to(torch::kDouble).clone().requires_grad_(true));
  torch::Tensor out = fn(vars);
  ASSERT_EQ(out.numel(), 1);
  const std::vector<torch::Tensor> grads =
      torch::autograd::grad({out}, vars, {}, /*retain_graph=*/false, /*create_graph=*/false,
                            /*allow_unused=*/true);
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < vars.size(); ++i) {
    torch::Tensor x = vars[i].detach().clone();
    torch::Tensor numeric = torch::zeros_like(x);
    auto flat = x.view(-1);
    auto num_flat = numeric.view(-1);
    for (int64_t k = 0; k < flat.numel(); ++k) {
      const double orig = flat[k].item<double>();
      std::vector<torch::Tensor> args(vars.begin(), vars.end());
      for (auto& a : args) a = a.detach();
      flat[k] = orig + step;
      args[i] = x.clone();
      const double plus = fn(args).item<double>();
      flat[k] = orig - step;
      args[i] = x.clone();
      const double minus = fn(args).item<double>();
      flat[k] = orig;
      num_flat[k] = (plus - minus) / (2 * step);
    }
    torch::Tensor analytic = grads[i].defined() ? grads[i] : torch::zeros_like(x);
    EXPECT_FALSE(analytic.isnan().any().item<bool>()) << "NaN gradient for input " << i;
    EXPECT_LT(MaxScaledError(analytic, numeric), tolerance)
        << "input " << i << "\nanalytic " << analytic << "\nnumeric " << numeric;
  }
}

inline bool AllFinite(const torch::Tensor& t) { return torch::isfinite(t).all().item<bool>(); }

}  // namespace rlhf::algo::testing
