// DataParallelGroup: two ranks in one process over loopback (real c10d TCPStore + Gloo).
// Collectives give the mean and rank 0's values; two PolicyTrainers that each train on half
// a batch end with identical weights, equal to one trainer trained on the whole batch.

#include "common/train/data_parallel_group.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <functional>
#include <sstream>
#include <thread>

#include "common/train/batch_shard.h"
#include "tests/unit/train/test_util.h"

namespace rlhf::train {
namespace {

using testing::ConfigFor;
using ::testing::HasSubstr;
using testing::LoadTrainerOrDie;

// A port nobody listens on right now (bind to 0, read it back, close).
int64_t FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

DataParallelOptions Options(int64_t rank, int64_t port) {
  DataParallelOptions options;
  options.rank = rank;
  options.world_size = 2;
  options.store_port = port;
  options.gloo_host = "127.0.0.1";
  options.timeout = std::chrono::seconds(60);
  return options;
}

// The local addresses (hex, as /proc/net/tcp{,6} writes them) listening on `port`.
std::vector<std::string> ListeningAddresses(int64_t port) {
  std::vector<std::string> out;
  for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::ifstream in(table);
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::string slot, local, remote, state;
      fields >> slot >> local >> remote >> state;
      const size_t colon = local.rfind(':');
      if (state == "0A" && colon != std::string::npos &&
          std::stoll(local.substr(colon + 1), nullptr, 16) == port) {
        out.push_back(local.substr(0, colon));
      }
    }
  }
  return out;
}

// Runs body(group) on ranks 0 and 1, each in its own thread with its own group.
void RunTwoRanks(const std::function<void(DataParallelGroup&)>& body,
                 int64_t bucket_bytes = DataParallelOptions().bucket_bytes) {
  const int64_t port = FreePort();
  std::vector<std::thread> threads;
  for (int64_t rank = 0; rank < 2; ++rank) {
    threads.emplace_back([&, rank] {
      // Rank 1 connects once rank 0's store listens: a client that dials a port nobody
      // holds yet can be handed that very port as its own ephemeral one and connect to
      // itself (TCP self-connect), which no store or Gloo handshake survives.
      for (int i = 0; rank == 1 && i < 6000 && ListeningAddresses(port).empty(); ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      DataParallelOptions options = Options(rank, port);
      options.bucket_bytes = bucket_bytes;
      auto group = DataParallelGroup::Join(options);
      ASSERT_TRUE(group.ok()) << group.status();
      EXPECT_EQ((*group)->rank(), rank);
      EXPECT_EQ((*group)->world_size(), 2);
      body(**group);
    });
  }
  for (auto& t : threads) t.join();
}

TEST(DataParallelGroupTest, CollectivesAverageAndBroadcast) {
  RunTwoRanks([](DataParallelGroup& group) {
    const float r = static_cast<float>(group.rank());
    std::vector<torch::Tensor> grads = {torch::full({2, 3}, r), torch::full({4}, 10 * r)};
    ASSERT_TRUE(group.AllReduceMean(grads).ok());
    EXPECT_TRUE(torch::equal(grads[0], torch::full({2, 3}, 0.5f)));
    EXPECT_TRUE(torch::equal(grads[1], torch::full({4}, 5.0f)));

    std::string bytes = group.rank() == 0 ? std::string("train\0me", 8) : "stale";
    ASSERT_TRUE(group.Broadcast(&bytes).ok());
    EXPECT_EQ(bytes, std::string("train\0me", 8));

    std::vector<torch::Tensor> weights = {torch::full({3}, r + 1)};
    ASSERT_TRUE(group.BroadcastTensors(weights).ok());
    EXPECT_TRUE(torch::equal(weights[0], torch::full({3}, 1.0f)));
  });
}

// Gradients in buckets of 4 floats: a gradient larger than a bucket is one of its own,
// small ones share; every gradient comes back as the mean, in its own shape.
TEST(DataParallelGroupTest, BucketedAllReduceAveragesEveryGradient) {
  RunTwoRanks(
      [](DataParallelGroup& group) {
        const float r = static_cast<float>(group.rank());
        const std::vector<std::vector<int64_t>> shapes = {{2, 3}, {1}, {2}, {3}, {5}, {1}};
        std::vector<torch::Tensor> grads;
        for (size_t i = 0; i < shapes.size(); ++i) {
          grads.push_back(
              torch::arange(torch::ones(shapes[i]).numel(), torch::kFloat32).reshape(shapes[i]) +
              100 * r + 10 * static_cast<float>(i));
        }
        ASSERT_TRUE(group.AllReduceMean(grads).ok());
        for (size_t i = 0; i < shapes.size(); ++i) {
          const torch::Tensor want =
              torch::arange(torch::ones(shapes[i]).numel(), torch::kFloat32).reshape(shapes[i]) +
              50 + 10 * static_cast<float>(i);
          EXPECT_TRUE(torch::equal(grads[i], want)) << i << ": " << grads[i];
        }
      },
      /*bucket_bytes=*/16);
}

// Rank 0's TCPStore listens on the address it was given (loopback here), not on every
// interface (0.0.0.0 / ::), which c10d's own bind would do.
TEST(DataParallelGroupTest, TheStoreListensOnlyOnItsAddress) {
  RunTwoRanks([](DataParallelGroup& group) {
    if (group.rank() != 0) return;
    EXPECT_THAT(ListeningAddresses(group.store_port()),
                ::testing::ElementsAre("0100007F"));  // 127.0.0.1
  });
  DataParallelOptions bad = Options(0, 1);
  bad.store_host = "192.0.2.1";  // TEST-NET-1: not an address of this machine
  auto joined = DataParallelGroup::Join(bad);
  ASSERT_FALSE(joined.ok());
  EXPECT_EQ(joined.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(joined.status().message(), HasSubstr("cannot listen on store address 192.0.2.1:1"));
}

TEST(DataParallelGroupTest, TwoRanksOnHalvesTrainLikeOneRankOnTheWhole) {
  // Equal lengths, so the mean over the whole batch's tokens is the mean of the halves'.
  SequenceBatch batch;
  for (int64_t i = 0; i < 4; ++i) {
    batch.prompts.push_back({1 + i, 7, 9});
    batch.responses.push_back({11 + i, 20 + 2 * i, 3, 40 + i});
  }
  const AlgorithmConfig sft = ConfigFor("sft");

  auto single = LoadTrainerOrDie("gpt2", /*value_head=*/false);
  ASSERT_NE(single, nullptr);
  for (int step = 0; step < 2; ++step) ASSERT_TRUE(single->TrainSft(batch, sft).ok());

  std::vector<std::vector<std::pair<std::string, torch::Tensor>>> weights(2);
  RunTwoRanks(
      [&](DataParallelGroup& group) {
        // A shared_ptr that does not own the group (it outlives the trainer here).
        std::shared_ptr<GradientAllReducer> reducer(&group, [](GradientAllReducer*) {});
        TrainerOptions options;
        options.optimizer.learning_rate = 1e-3;
        options.chunk_tokens = 7;
        auto trainer = PolicyTrainer::Load(testing::ModelDir("gpt2"), false, options, reducer);
        ASSERT_TRUE(trainer.ok()) << trainer.status();
        const int64_t r = group.rank();
        SequenceBatch half;
        half.prompts.assign(batch.prompts.begin() + 2 * r, batch.prompts.begin() + 2 * r + 2);
        half.responses.assign(batch.responses.begin() + 2 * r, batch.responses.begin() + 2 * r + 2);
        for (int step = 0; step < 2; ++step) ASSERT_TRUE((*trainer)->TrainSft(half, sft).ok());
        weights[r] = (*trainer)->NamedWeights(false);
      },
      /*bucket_bytes=*/4096);  // many buckets

  const auto expected = single->NamedWeights(false);
  ASSERT_EQ(weights[0].size(), expected.size());
  ASSERT_EQ(weights[1].size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    const std::string& name = expected[i].first;
    EXPECT_TRUE(torch::equal(weights[0][i].second, weights[1][i].second)) << name;
    torch::Tensor got = weights[0][i].second, want = expected[i].second;
    if (name.ends_with("attn.c_attn.bias")) {
      // The key bias's gradient is zero in exact arithmetic (softmax ignores a shift shared
      // by all keys), so AdamW turns rounding noise into full-size steps: skip that third.
      const int64_t hidden = got.size(0) / 3;
      got = torch::cat({got.slice(0, 0, hidden), got.slice(0, 2 * hidden)});
      want = torch::cat({want.slice(0, 0, hidden), want.slice(0, 2 * hidden)});
    }
    EXPECT_TRUE(torch::allclose(got, want, 1e-4, 1e-6)) << name;
  }
  // The step moved the weights (so the comparison above is not trivially true).
  auto untouched = LoadTrainerOrDie("gpt2", false);
  EXPECT_FALSE(torch::allclose(untouched->NamedWeights(false).back().second, expected.back().second,
                               0, 1e-7));
}

// A rank whose minibatch has no response tokens still joins the collective optimizer
// step (with zero gradients): the other rank is not left waiting in the all-reduce, both
// take the same steps and end with the same weights. (It used to skip the step.)
TEST(DataParallelGroupTest, ARankWithoutTokensStillJoinsEveryStep) {
  const AlgorithmConfig sft = ConfigFor("sft", [](AlgorithmConfig& c) { c.num_minibatches = 2; });
  std::vector<std::vector<std::pair<std::string, torch::Tensor>>> weights(2);
  std::vector<int64_t> versions(2, -1);
  RunTwoRanks([&](DataParallelGroup& group) {
    std::shared_ptr<GradientAllReducer> reducer(&group, [](GradientAllReducer*) {});
    TrainerOptions options;
    options.optimizer.learning_rate = 1e-3;
    auto trainer = PolicyTrainer::Load(testing::ModelDir("gpt2"), false, options, reducer);
    ASSERT_TRUE(trainer.ok()) << trainer.status();
    SequenceBatch shard;
    shard.prompts = {{1, 7}, {2, 9}};
    // Rank 1's rows have empty responses: its minibatches have no tokens at all.
    if (group.rank() == 0) {
      shard.responses = {{11, 12, 13}, {14, 15}};
    } else {
      shard.responses = {{}, {}};
    }
    auto stats = (*trainer)->TrainSft(shard, sft);
    ASSERT_TRUE(stats.ok()) << stats.status();
    EXPECT_EQ(stats->at("steps"), 2);
    versions[group.rank()] = (*trainer)->policy_version();
    weights[group.rank()] = (*trainer)->NamedWeights(false);
  });
  EXPECT_EQ(versions[0], 2);
  EXPECT_EQ(versions[1], 2);
  ASSERT_EQ(weights[0].size(), weights[1].size());
  for (size_t i = 0; i < weights[0].size(); ++i) {
    EXPECT_TRUE(torch::equal(weights[0][i].second, weights[1][i].second)) << weights[0][i].first;
  }
}

// How a restarted rank catches up: rank 0 has taken two steps, rank 1 is fresh; after
// BroadcastState both hold the same weights, AdamW moments and steps, and policy version,
// so one more step on the same batch leaves them bitwise equal (fresh moments would not).
TEST(DataParallelGroupTest, BroadcastStateCatchesUpAFreshRank) {
  const AlgorithmConfig sft = ConfigFor("sft");
  SequenceBatch batch;
  batch.prompts = {{1, 7}, {2, 9}};
  batch.responses = {{11, 12, 13}, {14, 15}};
  std::vector<std::vector<std::pair<std::string, torch::Tensor>>> weights(2);
  std::vector<int64_t> versions(2, -1);
  RunTwoRanks([&](DataParallelGroup& group) {
    TrainerOptions options;
    options.optimizer.learning_rate = 1e-3;
    // Each rank trains alone (no all-reduce): only BroadcastState joins them.
    auto trainer = PolicyTrainer::Load(testing::ModelDir("gpt2"), false, options, nullptr);
    ASSERT_TRUE(trainer.ok()) << trainer.status();
    if (group.rank() == 0) {
      for (int step = 0; step < 2; ++step) ASSERT_TRUE((*trainer)->TrainSft(batch, sft).ok());
    }
    ASSERT_TRUE((*trainer)->BroadcastState(group).ok());
    EXPECT_EQ((*trainer)->policy_version(), 2);
    ASSERT_TRUE((*trainer)->TrainSft(batch, sft).ok());
    versions[group.rank()] = (*trainer)->policy_version();
    weights[group.rank()] = (*trainer)->NamedWeights(false);
  });
  EXPECT_EQ(versions[0], 3);
  EXPECT_EQ(versions[1], 3);
  ASSERT_EQ(weights[0].size(), weights[1].size());
  for (size_t i = 0; i < weights[0].size(); ++i) {
    EXPECT_TRUE(torch::equal(weights[0][i].second, weights[1][i].second)) << weights[0][i].first;
  }
}

TEST(BatchShardTest, TokenTensorsFollowTheirRows) {
  PolicyGradientInputs inputs;
  inputs.batch.prompts = {{1}, {2}, {3}, {4}};
  inputs.batch.responses = {{5, 6}, {7}, {8, 9, 10}, {}};  // 6 response tokens
  inputs.old_logprobs = torch::arange(6, torch::kFloat32);
  inputs.advantages = torch::arange(6, torch::kFloat32) * 10;
  auto second = ShardRows(inputs, /*rank=*/1, /*world=*/2);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->batch.prompts, (std::vector<std::vector<int64_t>>{{3}, {4}}));
  EXPECT_TRUE(torch::equal(second->old_logprobs, torch::tensor({3.0f, 4.0f, 5.0f})));
  EXPECT_TRUE(torch::equal(second->advantages, torch::tensor({30.0f, 40.0f, 50.0f})));
  EXPECT_FALSE(second->returns.defined());

  auto uneven = ShardRows(inputs, 0, 3);
  EXPECT_THAT(uneven.status().message(),
              HasSubstr("a batch of 4 rows cannot be split evenly over 3"));
  inputs.old_logprobs = torch::zeros({5});
  EXPECT_THAT(ShardRows(inputs, 0, 2).status().message(),
              HasSubstr("old_logprobs has 5 values for 6 response tokens"));
}

TEST(DataParallelGroupTest, BadOptionsAndUnreachableStoreAreErrors) {
  DataParallelOptions options = Options(2, 1234);
  auto bad_rank = DataParallelGroup::Join(options);
  EXPECT_EQ(bad_rank.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad_rank.status().message(), HasSubstr("rank 2 is outside [0, 2)"));

  options = Options(1, FreePort());  // rank 1: nobody hosts the store
  options.timeout = std::chrono::seconds(2);
  const auto start = std::chrono::steady_clock::now();
  auto unreachable = DataParallelGroup::Join(options);
  EXPECT_EQ(unreachable.status().code(), absl::StatusCode::kUnavailable) << unreachable.status();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(30));
}

}  // namespace
}  // namespace rlhf::train
