// The in-process weight sync (rlhf local) leaves what the ExportWeights -> LoadWeights
// stream leaves: the rollout holds the actor's weights in its own dtype (a float32 one
// shares the trainer's tensors), serves the actor's version, and the stats count what the
// stream in that wire dtype would carry; a rollout of another shape is refused before
// anything is installed.

#include "services/local/in_process_weight_sync.h"

#include <gtest/gtest.h>

#include <functional>

#include "common/model/loader.h"
#include "common/train/policy_trainer.h"

namespace rlhf::coordinator {
namespace {

const std::string kModels = RLHF_SOURCE_DIR "/tests/golden/fixtures/models/";

std::shared_ptr<actor::ActorCore> PerturbedActor(int64_t* parameters) {
  auto trainer = train::PolicyTrainer::Load(kModels + "gpt2", /*value_head=*/true, {});
  EXPECT_TRUE(trainer.ok()) << trainer.status();
  torch::NoGradGuard no_grad;
  *parameters = 0;
  for (auto& [name, w] : (*trainer)->NamedWeights(/*include_value_head=*/false)) {
    w.add_(0.01f);  // differs from the rollout's copy of the checkpoint
    *parameters += w.numel();
  }
  return std::make_shared<actor::ActorCore>(std::move(*trainer));
}

// Calls check(held, actor's) for every actor weight with the rollout model's parameter of
// that name (each must exist); returns how many there were.
int64_t ForEachWeightPair(actor::ActorCore& actor, model::CausalLm& rollout_model,
                          const std::function<void(const std::string&, const torch::Tensor&,
                                                   const torch::Tensor&)>& check) {
  int64_t pairs = 0;
  absl::Status visited = actor.VisitWeights(
      false, [&](int64_t, const std::vector<std::pair<std::string, torch::Tensor>>& weights) {
        auto held = rollout_model.named_parameters();
        for (const auto& [name, w] : weights) {
          const torch::Tensor* mine = held.find(name);
          EXPECT_NE(mine, nullptr) << name;
          if (mine == nullptr) continue;
          check(name, *mine, w);
          ++pairs;
        }
        return absl::OkStatus();
      });
  EXPECT_TRUE(visited.ok()) << visited;
  return pairs;
}

TEST(InProcessWeightSyncTest, TheRolloutHoldsTheActorsWeightsInItsDtype) {
  int64_t parameters = 0;
  auto actor = PerturbedActor(&parameters);
  model::LoadOptions bf16;
  bf16.dtype = torch::kBFloat16;
  auto sampler = model::LoadCausalLm(kModels + "gpt2", bf16);
  ASSERT_TRUE(sampler.ok()) << sampler.status();
  rollout::RolloutCore rollout(*sampler, /*version=*/7);

  auto first = SyncWeightsInProcess(*actor, rollout, v1::DATA_TYPE_UNSPECIFIED);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->stats.version, 0);  // the actor's policy version, served
  EXPECT_EQ(rollout.version(), 0);
  EXPECT_EQ(first->stats.bytes, parameters * 4);  // float32, as the first stream sends
  EXPECT_EQ(first->held, v1::DATA_TYPE_BF16);
  const int64_t tensors = ForEachWeightPair(
      *actor, **sampler,
      [](const std::string& name, const torch::Tensor& copy, const torch::Tensor& w) {
        EXPECT_EQ(copy.scalar_type(), torch::kBFloat16);
        EXPECT_NE(copy.data_ptr(), w.data_ptr()) << name;  // a bf16 copy
        EXPECT_TRUE(torch::equal(copy, w.to(torch::kBFloat16))) << name;
      });
  EXPECT_EQ(first->stats.tensors, tensors);
  EXPECT_GT(tensors, 0);

  auto second = SyncWeightsInProcess(*actor, rollout, v1::DATA_TYPE_BF16);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->stats.bytes, parameters * 2);  // the bf16 wire: half
}

// A float32 rollout on the trainer's device holds no copy: its parameters are the
// trainer's tensors (the policy is in memory once).
TEST(InProcessWeightSyncTest, AFloat32RolloutSharesTheTrainersTensors) {
  int64_t parameters = 0;
  auto actor = PerturbedActor(&parameters);
  auto sampler = model::LoadCausalLm(kModels + "gpt2");
  ASSERT_TRUE(sampler.ok()) << sampler.status();
  rollout::RolloutCore rollout(*sampler);
  auto synced = SyncWeightsInProcess(*actor, rollout, v1::DATA_TYPE_UNSPECIFIED);
  ASSERT_TRUE(synced.ok()) << synced.status();
  EXPECT_EQ(synced->stats.bytes, parameters * 4);
  EXPECT_EQ(synced->held, v1::DATA_TYPE_F32);
  const int64_t shared = ForEachWeightPair(
      *actor, **sampler,
      [](const std::string& name, const torch::Tensor& mine, const torch::Tensor& w) {
        EXPECT_EQ(mine.data_ptr(), w.data_ptr()) << name;
        EXPECT_TRUE(torch::equal(mine, w)) << name;
      });
  EXPECT_EQ(shared, synced->stats.tensors);

  // A pipelined job (max_policy_lag > 0) samples while it trains: share = false copies.
  auto own = model::LoadCausalLm(kModels + "gpt2");
  ASSERT_TRUE(own.ok()) << own.status();
  rollout::RolloutCore copying(*own);
  auto copied = SyncWeightsInProcess(*actor, copying, v1::DATA_TYPE_UNSPECIFIED, /*share=*/false);
  ASSERT_TRUE(copied.ok()) << copied.status();
  const int64_t copies = ForEachWeightPair(
      *actor, **own,
      [](const std::string& name, const torch::Tensor& mine, const torch::Tensor& w) {
        EXPECT_NE(mine.data_ptr(), w.data_ptr()) << name;
        EXPECT_TRUE(torch::equal(mine, w)) << name;
      });
  EXPECT_EQ(copies, copied->stats.tensors);
}

TEST(InProcessWeightSyncTest, ARolloutOfAnotherShapeIsRefusedUnchanged) {
  int64_t parameters = 0;
  auto actor = PerturbedActor(&parameters);
  auto other = model::LoadCausalLm(kModels + "llama");
  ASSERT_TRUE(other.ok()) << other.status();
  rollout::RolloutCore rollout(*other, /*version=*/3);
  std::vector<torch::Tensor> before;
  for (const auto& item : (*other)->named_parameters()) before.push_back(item.value().clone());

  auto synced = SyncWeightsInProcess(*actor, rollout, v1::DATA_TYPE_UNSPECIFIED);
  ASSERT_FALSE(synced.ok());
  EXPECT_EQ(synced.status().code(), absl::StatusCode::kInvalidArgument) << synced.status();
  EXPECT_EQ(rollout.version(), 3);
  size_t i = 0;
  for (const auto& item : (*other)->named_parameters()) {
    EXPECT_TRUE(torch::equal(item.value(), before[i++])) << item.key();
  }
}

}  // namespace
}  // namespace rlhf::coordinator
