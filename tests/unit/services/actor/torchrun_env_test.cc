#include "services/actor/torchrun_env.h"

#include <map>
#include <string>

#include <gtest/gtest.h>

namespace rlhf::actor {
namespace {

using Env = std::map<std::string, std::string>;

absl::Status Apply(const Env& env, GivenFlags given, GroupSettings& settings) {
  return ApplyTorchrunEnv(
      [&env](const char* name) -> const char* {
        auto it = env.find(name);
        return it == env.end() ? nullptr : it->second.c_str();
      },
      given, settings);
}

// What torchrun --standalone --nproc-per-node 4 gives its third worker (with
// TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1, so that rank 0 hosts the store).
Env Torchrun() {
  return {{"RANK", "2"},
          {"WORLD_SIZE", "4"},
          {"LOCAL_RANK", "2"},
          {"MASTER_ADDR", "node0"},
          {"MASTER_PORT", "29400"},
          {"TORCHELASTIC_USE_AGENT_STORE", "False"}};
}

void ExpectError(const absl::Status& status, const std::string& text) {
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_NE(status.message().find(text), std::string::npos) << status;
  EXPECT_EQ(status.message().find('\n'), std::string::npos) << "one line: " << status;
}

TEST(TorchrunEnvTest, NoEnvironmentKeepsTheFlags) {
  GroupSettings settings{.rank = 1, .world_size = 2, .store = "h:1"};
  ASSERT_TRUE(Apply({}, {.rank = true, .world_size = true, .store = true}, settings).ok());
  EXPECT_EQ(settings.rank, 1);
  EXPECT_EQ(settings.world_size, 2);
  EXPECT_EQ(settings.store, "h:1");
  EXPECT_EQ(settings.local_rank, 1);  // a bare --device cuda: cuda:<rank>
}

TEST(TorchrunEnvTest, EnvironmentSuppliesFlagsNotGiven) {
  GroupSettings settings;
  ASSERT_TRUE(Apply(Torchrun(), {}, settings).ok());
  EXPECT_EQ(settings.rank, 2);
  EXPECT_EQ(settings.world_size, 4);
  EXPECT_EQ(settings.store, "node0:29400");
  EXPECT_EQ(settings.local_rank, 2);
}

TEST(TorchrunEnvTest, LocalRankIsTheDeviceIndexNotTheRank) {
  Env env = Torchrun();
  env["RANK"] = std::string("6");
  env["WORLD_SIZE"] = std::string("8");  // second node of two, 4 GPUs each
  GroupSettings settings;
  ASSERT_TRUE(Apply(env, {}, settings).ok());
  EXPECT_EQ(settings.rank, 6);
  EXPECT_EQ(settings.local_rank, 2);
}

TEST(TorchrunEnvTest, FlagsThatAgreeAreFine) {
  GroupSettings settings{.rank = 2, .world_size = 4, .store = "node0:29400"};
  EXPECT_TRUE(Apply(Torchrun(), {.rank = true, .world_size = true, .store = true}, settings).ok());
}

TEST(TorchrunEnvTest, FlagsThatDisagreeNameBoth) {
  GroupSettings rank{.rank = 1};
  ExpectError(Apply(Torchrun(), {.rank = true}, rank), "--rank 1 disagrees with RANK=2");
  GroupSettings world{.world_size = 2};
  ExpectError(Apply(Torchrun(), {.world_size = true}, world),
              "--world-size 2 disagrees with WORLD_SIZE=4");
  GroupSettings store{.store = "node0:29500"};
  ExpectError(Apply(Torchrun(), {.store = true}, store),
              "--group-store node0:29500 disagrees with MASTER_ADDR:MASTER_PORT=node0:29400");
}

TEST(TorchrunEnvTest, BadValuesNameTheVariable) {
  const std::pair<const char*, const char*> cases[] = {
      {"RANK", "two"},      {"RANK", "-1"},           {"WORLD_SIZE", "0"},  {"WORLD_SIZE", "4x"},
      {"MASTER_PORT", "0"}, {"MASTER_PORT", "65536"}, {"LOCAL_RANK", "-1"}, {"LOCAL_RANK", "1.5"}};
  for (const auto& [name, value] : cases) {
    Env env = Torchrun();
    env[name] = std::string(value);
    GroupSettings settings;
    ExpectError(Apply(env, {}, settings), std::string(name) + ": want ");
  }
}

TEST(TorchrunEnvTest, RankMustBeBelowTheWorldSize) {
  Env env = Torchrun();
  env["RANK"] = std::string("4");
  GroupSettings settings;
  ExpectError(Apply(env, {}, settings), "rank 4 (RANK) must be in [0, world size 4 (WORLD_SIZE))");
  GroupSettings flags{.rank = 3, .world_size = 2};
  ExpectError(Apply({}, {.rank = true, .world_size = true}, flags),
              "rank 3 (--rank) must be in [0, world size 2 (--world-size))");
  GroupSettings zero{.world_size = 0};
  ExpectError(Apply({}, {.world_size = true}, zero), "--world-size: want an integer >= 1");
}

TEST(TorchrunEnvTest, MasterAddrAndPortComeTogether) {
  GroupSettings settings;
  ExpectError(Apply({{"MASTER_ADDR", "node0"}}, {}, settings),
              "MASTER_ADDR is set but MASTER_PORT is not");
  ExpectError(Apply({{"MASTER_PORT", "1"}}, {}, settings),
              "MASTER_PORT is set but MASTER_ADDR is not");
}

TEST(TorchrunEnvTest, EmptyVariablesCountAsUnset) {
  GroupSettings settings{.rank = 1, .world_size = 2};
  ASSERT_TRUE(Apply({{"RANK", ""}, {"WORLD_SIZE", ""}, {"LOCAL_RANK", ""}}, {}, settings).ok());
  EXPECT_EQ(settings.rank, 1);
  EXPECT_EQ(settings.local_rank, 1);
}

TEST(TorchrunEnvTest, TorchrunsAgentStoreIsRefusedForAGroup) {
  Env env = Torchrun();
  env["TORCHELASTIC_USE_AGENT_STORE"] = std::string("True");
  GroupSettings settings;
  ExpectError(Apply(env, {}, settings), "TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1");
  // One rank forms no group, so the agent's store is in nobody's way.
  env["RANK"] = std::string("0");
  env["WORLD_SIZE"] = std::string("1");
  GroupSettings single;
  EXPECT_TRUE(Apply(env, {}, single).ok());
}

}  // namespace
}  // namespace rlhf::actor
