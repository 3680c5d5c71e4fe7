// --device / --dtype parsing, the checkpoint's dtype, and the refusal of CUDA where this
// build or machine has none (this test machine has no GPU: every CUDA device is refused).

#include "common/model/device_flags.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace rlhf::model {
namespace {

using ::testing::HasSubstr;

TEST(DeviceFlagsTest, ParsesDevicesAndMapsABareCudaToTheLocalRank) {
  EXPECT_EQ(*ParseDevice("cpu"), torch::Device(torch::kCPU));
  EXPECT_EQ(*ParseDevice("cuda"), torch::Device(torch::kCUDA, 0));
  EXPECT_EQ(*ParseDevice("cuda", /*local_rank=*/3), torch::Device(torch::kCUDA, 3));
  EXPECT_EQ(*ParseDevice("cuda:2", /*local_rank=*/3), torch::Device(torch::kCUDA, 2));
  for (const char* bad : {"gpu", "cuda:", "cuda:-1", "cuda:x", "CPU", ""}) {
    auto parsed = ParseDevice(bad);
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_THAT(parsed.status().message(), HasSubstr("--device: want cpu, cuda or cuda:N"));
  }
}

TEST(DeviceFlagsTest, ParsesDtypesAndReadsTheCheckpoints) {
  EXPECT_EQ(*ParseDtype("bfloat16"), torch::kBFloat16);
  EXPECT_EQ(*ParseDtype("bf16"), torch::kBFloat16);
  EXPECT_EQ(*ParseDtype("float16"), torch::kFloat16);
  EXPECT_EQ(*ParseDtype("float32"), torch::kFloat32);
  EXPECT_FALSE(ParseDtype("half").ok());
  EXPECT_EQ(CheckpointDtype(RLHF_SOURCE_DIR "/examples/models/tiny-gpt2"), torch::kFloat32);
  EXPECT_EQ(CheckpointDtype("/nonexistent"), torch::kFloat32);
}

TEST(DeviceFlagsTest, CpuResolvesToFloat32AndCudaIsRefusedWithoutAGpu) {
  DeviceFlags flags;
  auto cpu = flags.Resolve(RLHF_SOURCE_DIR "/examples/models/tiny-gpt2");
  ASSERT_TRUE(cpu.ok()) << cpu.status();
  EXPECT_TRUE(cpu->device.is_cpu());
  EXPECT_EQ(cpu->dtype, torch::kFloat32);
  flags.dtype = "bfloat16";
  EXPECT_EQ(flags.Resolve(RLHF_SOURCE_DIR "/examples/models/tiny-gpt2")->dtype, torch::kBFloat16);
  if (torch::cuda::device_count() > 0) GTEST_SKIP() << "a GPU is visible here";
  flags.device = "cuda:1";
  auto cuda = flags.Resolve(RLHF_SOURCE_DIR "/examples/models/tiny-gpt2");
  ASSERT_FALSE(cuda.ok());
  EXPECT_EQ(cuda.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(cuda.status().message(), HasSubstr("--device cuda:1: CUDA is not available here"));
}

}  // namespace
}  // namespace rlhf::model
