// GPU parity checks, run by tests/gpu/run_gpu_checks.sh on a machine with an NVIDIA GPU
// (never by ctest: without a visible CUDA device every test fails, on purpose, so that a
// GPU run that silently fell back to the CPU cannot pass).
//   - logits of the golden fixture models (tests/golden/make_model_goldens.py) on CUDA vs
//     the CPU and vs transformers' goldens, in float32 and bfloat16;
//   - greedy generation on CUDA in float32 equals transformers' (and so the CPU's) tokens;
//   - token logprobs (the trainer's and the reference's path) on CUDA vs the CPU;
//   - the reward model's scores on CUDA;
//   - a one-rank NCCL process group (common/train/nccl_backend.h): all-reduce, broadcast.

#include <chrono>
#include <cstdlib>
#include <iostream>

#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include "common/model/generation.h"
#include "common/model/token_logprobs.h"
#include "common/train/nccl_backend.h"
#include "tests/unit/model/test_util.h"

namespace rlhf::model {
namespace {

using testing::GoldenPrompts;
using testing::Goldens;
using testing::GoldenTensor;
using testing::Ids;
using testing::MaxAbsDiff;

// float32: the CPU test's tolerance vs transformers (golden_test.cc); CUDA only reorders
// the sums (TF32 matmuls are off by default in LibTorch).
constexpr float kFloat32Tolerance = 1e-4f;
// bfloat16 vs float32 goldens, as golden_test.cc's Bfloat16LoadsAndStaysClose.
constexpr float kBfloat16Tolerance = 0.25f;

// RLHF_PARITY_DEVICE=cpu runs the same checks against the CPU, to check the checks.
torch::Device Device() {
  const char* env = std::getenv("RLHF_PARITY_DEVICE");
  return torch::Device(env != nullptr && *env != '\0' ? env : "cuda:0");
}

#define REQUIRE_CUDA()                                                                        \
  if (Device().is_cuda() && !torch::cuda::is_available()) {                                   \
    GTEST_FAIL() << "no CUDA device visible: this binary is for tests/gpu/run_gpu_checks.sh " \
                    "on a GPU machine, in a -DRLHF_WITH_CUDA=ON build";                       \
  }

LoadOptions On(torch::Device device, torch::Dtype dtype) {
  LoadOptions options;
  options.device = device;
  options.dtype = dtype;
  return options;
}

class DeviceParityTest : public ::testing::TestWithParam<std::string> {};

TEST_P(DeviceParityTest, LogitsMatchTheCpuAndTransformers) {
  REQUIRE_CUDA();
  const std::string name = GetParam();
  for (torch::Dtype dtype : {torch::kFloat32, torch::kBFloat16}) {
    auto cpu = testing::LoadOrDie(name, On(torch::kCPU, dtype));
    auto cuda = testing::LoadOrDie(name, On(Device(), dtype));
    ASSERT_NE(cpu, nullptr);
    ASSERT_NE(cuda, nullptr);
    ASSERT_EQ(cuda->device(), Device());
    const float tolerance = dtype == torch::kFloat32 ? kFloat32Tolerance : kBfloat16Tolerance;
    const auto prompts = GoldenPrompts();
    float worst_cpu = 0, worst_golden = 0;
    for (size_t i = 0; i < prompts.size(); ++i) {
      torch::InferenceMode guard;
      auto on_cpu = cpu->Forward(Ids(prompts[i]));
      auto on_cuda = cuda->Forward(Ids(prompts[i]).to(Device()));
      ASSERT_TRUE(on_cpu.ok()) << on_cpu.status();
      ASSERT_TRUE(on_cuda.ok()) << on_cuda.status();
      const torch::Tensor got = on_cuda->squeeze(0).to(torch::kCPU, torch::kFloat32);
      const std::string key = name + "/prompt" + std::to_string(i);
      const torch::Tensor positions = GoldenTensor(key + "/positions");
      const float vs_cpu = MaxAbsDiff(got, on_cpu->squeeze(0));
      const float vs_golden =
          MaxAbsDiff(got.index_select(0, positions), GoldenTensor(key + "/logits"));
      worst_cpu = std::max(worst_cpu, vs_cpu);
      worst_golden = std::max(worst_golden, vs_golden);
      EXPECT_LE(vs_cpu, tolerance) << key << " " << torch::toString(dtype);
      EXPECT_LE(vs_golden, tolerance) << key << " " << torch::toString(dtype);
    }
    std::cout << "[ gpu ] " << name << " " << torch::toString(dtype)
              << " logits max abs diff: vs CPU " << worst_cpu << ", vs transformers "
              << worst_golden << "\n";
  }
}

TEST_P(DeviceParityTest, GreedyInFloat32MatchesTransformersAloneAndBatched) {
  REQUIRE_CUDA();
  const std::string name = GetParam();
  auto cuda = testing::LoadOrDie(name, On(Device(), torch::kFloat32));
  ASSERT_NE(cuda, nullptr);
  testing::ExpectGreedyMatchesGoldens(*cuda, name);
  const auto prompts = GoldenPrompts();
  std::vector<uint64_t> seeds(prompts.size(), 0);
  SamplingParams params;
  // bfloat16 sampling on CUDA runs (its tokens may differ from float32's).
  auto bf16 = testing::LoadOrDie(name, On(Device(), torch::kBFloat16));
  ASSERT_NE(bf16, nullptr);
  params.greedy = false;
  params.max_new_tokens = 4;
  EXPECT_TRUE(Generate(*bf16, prompts, params, seeds).ok());
}

TEST_P(DeviceParityTest, TokenLogprobsMatchTheCpu) {
  REQUIRE_CUDA();
  const std::string name = GetParam();
  auto cpu = testing::LoadOrDie(name, On(torch::kCPU, torch::kFloat32));
  auto cuda = testing::LoadOrDie(name, On(Device(), torch::kFloat32));
  ASSERT_NE(cpu, nullptr);
  ASSERT_NE(cuda, nullptr);
  const auto prompts = GoldenPrompts();
  int64_t width = 0;
  for (const auto& p : prompts) width = std::max<int64_t>(width, p.size());
  const int64_t batch = static_cast<int64_t>(prompts.size());
  torch::Tensor ids = torch::zeros({batch, width}, torch::kInt64);
  torch::Tensor mask = torch::zeros({batch, width}, torch::kInt64);
  for (int64_t i = 0; i < batch; ++i) {  // left-padded, as the services pad
    const int64_t n = prompts[i].size();
    ids[i].slice(0, width - n).copy_(torch::tensor(prompts[i]));
    mask[i].slice(0, width - n).fill_(1);
  }
  torch::InferenceMode guard;
  TokenLogprobsOptions options;
  auto on_cpu = ComputeTokenLogprobsByRows(*cpu, ids, mask, options);
  auto on_cuda = ComputeTokenLogprobsByRows(*cuda, ids, mask, options);
  ASSERT_TRUE(on_cpu.ok()) << on_cpu.status();
  ASSERT_TRUE(on_cuda.ok()) << on_cuda.status();
  const torch::Tensor real = mask.slice(1, 1).to(torch::kBool);
  const float logprobs =
      MaxAbsDiff(on_cuda->logprobs.masked_select(real), on_cpu->logprobs.masked_select(real));
  const float entropy =
      MaxAbsDiff(on_cuda->entropy.masked_select(real), on_cpu->entropy.masked_select(real));
  EXPECT_LE(logprobs, kFloat32Tolerance) << name;
  EXPECT_LE(entropy, kFloat32Tolerance) << name;
  std::cout << "[ gpu ] " << name << " token logprobs max abs diff vs CPU: " << logprobs
            << ", entropy " << entropy << "\n";
}

INSTANTIATE_TEST_SUITE_P(Models, DeviceParityTest,
                         ::testing::ValuesIn(testing::CausalModelNames()));

TEST(DeviceParityTest, RewardModelScoresMatchTransformers) {
  REQUIRE_CUDA();
  auto model =
      LoadSequenceClassifier(testing::ModelDir("llama-seqcls"), On(Device(), torch::kFloat32));
  ASSERT_TRUE(model.ok()) << model.status();
  const auto prompts = GoldenPrompts();
  const nlohmann::json& golden = Goldens()["models"]["llama-seqcls"];
  float worst = 0;
  for (size_t i = 0; i < prompts.size(); ++i) {
    torch::InferenceMode guard;
    auto score = (*model)->Score(Ids(prompts[i]).to(Device()));
    ASSERT_TRUE(score.ok()) << score.status();
    const float want = golden["prompts"][i]["score"][0].get<float>();
    worst = std::max(worst, std::abs(score->to(torch::kCPU).item<float>() - want));
  }
  EXPECT_LE(worst, kFloat32Tolerance);
  std::cout << "[ gpu ] llama-seqcls scores max abs diff vs transformers: " << worst << "\n";
}

// One rank is all one GPU allows (NCCL refuses two ranks on one device), and it still
// runs NCCL's communicator set-up and kernels.
TEST(NcclTest, OneRankAllReduceAndBroadcast) {
  REQUIRE_CUDA();
  c10d::TCPStoreOptions store_options;
  store_options.port = 0;
  store_options.isServer = true;
  store_options.numWorkers = 1;
  store_options.waitWorkers = false;
  auto store = c10::make_intrusive<c10d::TCPStore>("127.0.0.1", store_options);
  auto backend =
      train::MakeNcclBackend(store, /*rank=*/0, /*world_size=*/1, std::chrono::seconds(60));
  ASSERT_TRUE(backend.ok()) << backend.status();
  const torch::Tensor want = torch::arange(1000, torch::kFloat32);
  std::vector<torch::Tensor> tensors = {want.to(Device())};
  (*backend)->allreduce(tensors)->wait();
  EXPECT_TRUE(torch::equal(tensors[0].to(torch::kCPU), want));
  std::vector<torch::Tensor> bytes = {torch::full({64}, 7, torch::kUInt8).to(Device())};
  (*backend)->broadcast(bytes)->wait();
  EXPECT_EQ(bytes[0].sum().item<int64_t>(), 64 * 7);
  std::cout << "[ gpu ] NCCL one-rank all-reduce and broadcast on " << Device() << ": ok\n";
}

}  // namespace
}  // namespace rlhf::model
