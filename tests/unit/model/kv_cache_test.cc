// Incremental decoding with the KV cache equals recomputing the whole sequence.

#include "common/model/kv_cache.h"

#include "tests/unit/model/test_util.h"

namespace rlhf::model {
namespace {

using ::testing::HasSubstr;

constexpr float kCacheTolerance = 1e-5f;

class KvCacheTest : public ::testing::TestWithParam<std::string> {};

// A left-padded batch: row b has pad[b] padding slots and then real tokens.
struct Batch {
  torch::Tensor ids;   // [B, T]
  torch::Tensor mask;  // [B, T]
};

Batch MakeBatch(int64_t length, const std::vector<int64_t>& pads, int64_t vocab) {
  torch::manual_seed(17);
  const int64_t batch = static_cast<int64_t>(pads.size());
  Batch out{torch::randint(3, vocab, {batch, length}, torch::kInt64),
            torch::ones({batch, length}, torch::kInt64)};
  for (int64_t b = 0; b < batch; ++b) {
    out.ids[b].slice(0, 0, pads[b]).fill_(0);
    out.mask[b].slice(0, 0, pads[b]).fill_(0);
  }
  return out;
}

TEST_P(KvCacheTest, IncrementalDecodingEqualsFullRecompute) {
  auto model = testing::LoadOrDie(GetParam());
  ASSERT_NE(model, nullptr);
  torch::NoGradGuard no_grad;
  const int64_t length = 24;  // past Mistral's sliding window of 8
  const int64_t prefill = 6;
  Batch batch = MakeBatch(length, {0, 3, 5}, model->config().vocab_size);
  auto full = model->Forward(batch.ids, batch.mask);
  ASSERT_TRUE(full.ok()) << full.status();

  auto cache = KvCache::Create(model->config(), 3, length, model->dtype(), model->device());
  ASSERT_TRUE(cache.ok()) << cache.status();
  float worst = 0;
  auto check = [&](const torch::Tensor& logits, int64_t start) {
    for (int64_t b = 0; b < 3; ++b) {
      for (int64_t t = 0; t < logits.size(1); ++t) {
        if (batch.mask[b][start + t].item<int64_t>() == 0) continue;  // padding: unused
        worst = std::max(worst, testing::MaxAbsDiff(logits[b][t], (*full)[b][start + t]));
      }
    }
  };
  auto first =
      model->Forward(batch.ids.slice(1, 0, prefill), batch.mask.slice(1, 0, prefill), &*cache);
  ASSERT_TRUE(first.ok()) << first.status();
  check(*first, 0);
  // A multi-token chunk on top of the cache (explicit mask with past > 0), then one by one.
  const int64_t chunk_end = prefill + 4;
  auto chunk = model->Forward(batch.ids.slice(1, prefill, chunk_end),
                              batch.mask.slice(1, 0, chunk_end), &*cache);
  ASSERT_TRUE(chunk.ok()) << chunk.status();
  check(*chunk, prefill);
  for (int64_t t = chunk_end; t < length; ++t) {
    auto step =
        model->Forward(batch.ids.slice(1, t, t + 1), batch.mask.slice(1, 0, t + 1), &*cache);
    ASSERT_TRUE(step.ok()) << step.status();
    check(*step, t);
  }
  EXPECT_EQ(cache->length(), length);
  EXPECT_LE(worst, kCacheTolerance) << GetParam();
  std::cout << "[ kv cache ] " << GetParam() << " incremental vs full max abs diff: " << worst
            << "\n";
}

TEST_P(KvCacheTest, UnpaddedDecodingEqualsFullRecompute) {
  auto model = testing::LoadOrDie(GetParam());
  ASSERT_NE(model, nullptr);
  torch::NoGradGuard no_grad;
  const int64_t length = 20;
  Batch batch = MakeBatch(length, {0, 0}, model->config().vocab_size);
  auto full = model->Forward(batch.ids);
  ASSERT_TRUE(full.ok()) << full.status();
  auto cache = KvCache::Create(model->config(), 2, length, model->dtype(), model->device());
  ASSERT_TRUE(cache.ok());
  ASSERT_TRUE(model->Forward(batch.ids.slice(1, 0, 5), {}, &*cache).ok());
  for (int64_t t = 5; t < length; ++t) {
    auto step = model->Forward(batch.ids.slice(1, t, t + 1), {}, &*cache);
    ASSERT_TRUE(step.ok()) << step.status();
    EXPECT_LE(testing::MaxAbsDiff(step->select(1, 0), full->select(1, t)), kCacheTolerance);
  }
}

TEST_P(KvCacheTest, OverflowIsAnErrorNotACrash) {
  auto model = testing::LoadOrDie(GetParam());
  ASSERT_NE(model, nullptr);
  auto cache = KvCache::Create(model->config(), 1, 4, model->dtype(), model->device());
  ASSERT_TRUE(cache.ok());
  auto logits = model->Forward(testing::Ids({5, 6, 7, 8, 9}), {}, &*cache);
  ASSERT_FALSE(logits.ok());
  EXPECT_THAT(logits.status().message(), HasSubstr("KV cache overflow"));
}

INSTANTIATE_TEST_SUITE_P(Models, KvCacheTest, ::testing::ValuesIn(testing::CausalModelNames()));

}  // namespace
}  // namespace rlhf::model
