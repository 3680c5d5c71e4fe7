// Sharded writing and SafetensorsCheckpoint's directory layouts and index validation.

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/io/safetensors.h"
#include "tests/unit/io/test_util.h"

namespace rlhf::io {
namespace {

using ::rlhf::io::testing::ReadBytes;
using ::rlhf::io::testing::TestDir;
using ::rlhf::io::testing::WriteBytes;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Six F32 tensors of 4, 8, 12, 16, 20, 24 elements (16..96 bytes, 336 in all).
class Tensors {
 public:
  Tensors() {
    for (int i = 0; i < 6; ++i) {
      storage_.emplace_back(static_cast<size_t>(4 * (i + 1)), static_cast<float>(i));
    }
    for (int i = 0; i < 6; ++i) {
      const auto& s = storage_[i];
      views_.push_back(TensorView{"layer." + std::to_string(i) + ".weight",
                                  DType::kF32,
                                  {static_cast<int64_t>(s.size())},
                                  reinterpret_cast<const uint8_t*>(s.data()),
                                  s.size() * sizeof(float)});
    }
  }
  const std::vector<TensorView>& views() const { return views_; }

 private:
  std::vector<std::vector<float>> storage_;
  std::vector<TensorView> views_;
};

std::vector<std::string> FileNames(const std::filesystem::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    names.push_back(e.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

void ExpectSameAs(const SafetensorsCheckpoint& checkpoint, const std::vector<TensorView>& want) {
  ASSERT_EQ(checkpoint.tensors().size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    const TensorView* t = checkpoint.Find(want[i].name);
    ASSERT_NE(t, nullptr) << want[i].name;
    EXPECT_EQ(checkpoint.tensors()[i], t);
    EXPECT_EQ(t->shape, want[i].shape);
    ASSERT_EQ(t->nbytes, want[i].nbytes);
    EXPECT_EQ(std::memcmp(t->data, want[i].data, t->nbytes), 0);
  }
}

TEST(ShardedSafetensors, EverythingFitsInOneFile) {
  const Tensors tensors;
  const std::filesystem::path dir = TestDir() / "ckpt";
  ASSERT_TRUE(WriteShardedSafetensors(dir, tensors.views(), {{"format", "pt"}}, 336).ok());
  EXPECT_THAT(FileNames(dir), ElementsAre("model.safetensors"));
  absl::StatusOr<std::unique_ptr<SafetensorsCheckpoint>> ckpt = SafetensorsCheckpoint::Open(dir);
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  EXPECT_FALSE((*ckpt)->sharded());
  ExpectSameAs(**ckpt, tensors.views());
  EXPECT_EQ((*ckpt)->metadata().at("format"), "pt");
}

TEST(ShardedSafetensors, SplitsGreedilyAndWritesATransformersIndex) {
  const Tensors tensors;
  const std::filesystem::path dir = TestDir();
  // 16+32+48 = 96 <= 100 | 64 | 80 | 96: a new shard whenever the next tensor would overflow.
  ASSERT_TRUE(WriteShardedSafetensors(dir, tensors.views(), {{"format", "pt"}}, 100).ok());
  EXPECT_THAT(FileNames(dir),
              ElementsAre("model-00001-of-00004.safetensors", "model-00002-of-00004.safetensors",
                          "model-00003-of-00004.safetensors", "model-00004-of-00004.safetensors",
                          "model.safetensors.index.json"));

  const nlohmann::json index = nlohmann::json::parse(ReadBytes(dir / kSafetensorsIndexFileName));
  EXPECT_EQ(index["metadata"]["total_size"], 336);
  EXPECT_EQ(index["metadata"]["format"], "pt");
  EXPECT_EQ(index["weight_map"]["layer.0.weight"], "model-00001-of-00004.safetensors");
  EXPECT_EQ(index["weight_map"]["layer.2.weight"], "model-00001-of-00004.safetensors");
  EXPECT_EQ(index["weight_map"]["layer.3.weight"], "model-00002-of-00004.safetensors");
  EXPECT_EQ(index["weight_map"]["layer.5.weight"], "model-00004-of-00004.safetensors");

  absl::StatusOr<std::unique_ptr<SafetensorsCheckpoint>> ckpt = SafetensorsCheckpoint::Open(dir);
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  EXPECT_TRUE((*ckpt)->sharded());
  EXPECT_EQ((*ckpt)->files().size(), 4u);
  ExpectSameAs(**ckpt, tensors.views());
  EXPECT_EQ((*ckpt)->names().front(), "layer.0.weight");
  EXPECT_EQ((*ckpt)->metadata().at("total_size"), "336");
  EXPECT_EQ((*ckpt)->files()[0]->metadata().at("format"), "pt");
  EXPECT_EQ((*ckpt)->Find("nope"), nullptr);
}

TEST(ShardedSafetensors, TensorLargerThanTheLimitGetsItsOwnShard) {
  const Tensors tensors;
  const std::filesystem::path dir = TestDir();
  ASSERT_TRUE(WriteShardedSafetensors(dir, tensors.views(), {}, 10).ok());
  absl::StatusOr<std::unique_ptr<SafetensorsCheckpoint>> ckpt = SafetensorsCheckpoint::Open(dir);
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  EXPECT_EQ((*ckpt)->files().size(), 6u);
  ExpectSameAs(**ckpt, tensors.views());
}

TEST(ShardedSafetensors, RewritingRemovesTheOtherLayout) {
  const Tensors tensors;
  const std::filesystem::path dir = TestDir();
  WriteBytes(dir / "config.json", "{}");  // not ours: must survive
  ASSERT_TRUE(WriteShardedSafetensors(dir, tensors.views(), {}, 10).ok());
  ASSERT_TRUE(WriteShardedSafetensors(dir, tensors.views(), {}, 100).ok());
  EXPECT_EQ(FileNames(dir).size(), 6u);  // 4 shards + index + config.json
  ASSERT_TRUE(WriteShardedSafetensors(dir, tensors.views(), {}, 1000).ok());
  EXPECT_THAT(FileNames(dir), ElementsAre("config.json", "model.safetensors"));
  ASSERT_TRUE(WriteShardedSafetensors(dir, tensors.views(), {}, 200).ok());
  EXPECT_THAT(FileNames(dir),
              ElementsAre("config.json", "model-00001-of-00002.safetensors",
                          "model-00002-of-00002.safetensors", "model.safetensors.index.json"));
  EXPECT_TRUE(SafetensorsCheckpoint::Open(dir).ok());
}

TEST(ShardedSafetensors, ZeroLimitIsInvalid) {
  EXPECT_EQ(WriteShardedSafetensors(TestDir(), {}, {}, 0).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(SafetensorsCheckpoint, EmptyDirectoryNamesBothLayouts) {
  const std::filesystem::path dir = TestDir();
  WriteBytes(dir / "pytorch_model.safetensors", "");  // other names are not guessed at
  absl::StatusOr<std::unique_ptr<SafetensorsCheckpoint>> ckpt = SafetensorsCheckpoint::Open(dir);
  EXPECT_EQ(ckpt.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ckpt.status().message(),
            "no model.safetensors or model.safetensors.index.json in " + dir.string());
}

TEST(SafetensorsCheckpoint, BadSingleFileReportsItsPath) {
  const std::filesystem::path dir = TestDir();
  WriteBytes(dir / kSafetensorsFileName, "abc");
  absl::StatusOr<std::unique_ptr<SafetensorsCheckpoint>> ckpt = SafetensorsCheckpoint::Open(dir);
  EXPECT_EQ(ckpt.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(ckpt.status().message()),
              HasSubstr((dir / kSafetensorsFileName).string()));
}

// A two-shard checkpoint whose index the test then edits.
class ShardedIndexTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = TestDir();
    ASSERT_TRUE(WriteShardedSafetensors(dir_, tensors_.views(), {}, 200).ok());
    index_ = nlohmann::json::parse(ReadBytes(dir_ / kSafetensorsIndexFileName));
  }
  absl::Status OpenWithIndex(const std::string& text) {
    WriteBytes(dir_ / kSafetensorsIndexFileName, text);
    return SafetensorsCheckpoint::Open(dir_).status();
  }
  absl::Status OpenWithIndex() { return OpenWithIndex(index_.dump()); }

  Tensors tensors_;
  std::filesystem::path dir_;
  nlohmann::json index_;
};

TEST_F(ShardedIndexTest, IndexNamesAMissingShard) {
  index_["weight_map"]["layer.5.weight"] = "model-00009-of-00009.safetensors";
  const absl::Status status = OpenWithIndex();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("model.safetensors.index.json: shard "
                        "\"model-00009-of-00009.safetensors\" (holding tensor "
                        "\"layer.5.weight\") does not exist"));
}

TEST_F(ShardedIndexTest, IndexNamesATensorItsShardLacks) {
  index_["weight_map"]["layer.9.weight"] = "model-00001-of-00002.safetensors";
  const absl::Status status = OpenWithIndex();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("tensor \"layer.9.weight\" is mapped to "
                        "\"model-00001-of-00002.safetensors\", which does not contain it"));
}

TEST_F(ShardedIndexTest, TensorMappedToTheWrongShard) {
  index_["weight_map"]["layer.0.weight"] = "model-00002-of-00002.safetensors";
  const absl::Status status = OpenWithIndex();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("\"layer.0.weight\" is mapped to "
                                                       "\"model-00002-of-00002.safetensors\""));
}

TEST_F(ShardedIndexTest, ShardHoldsATensorTheIndexOmits) {
  index_["weight_map"].erase("layer.1.weight");
  const absl::Status status = OpenWithIndex();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("holds tensor \"layer.1.weight\", which the weight_map "
                        "does not assign to it"));
}

TEST_F(ShardedIndexTest, ShardPathMustStayInTheDirectory) {
  index_["weight_map"]["layer.0.weight"] = "../model-00001-of-00002.safetensors";
  const absl::Status status = OpenWithIndex();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("must name a file in the same directory"));
}

TEST_F(ShardedIndexTest, MalformedIndex) {
  EXPECT_THAT(std::string(OpenWithIndex("{\"weight_map\": ").message()),
              HasSubstr("not valid JSON"));
  EXPECT_THAT(std::string(OpenWithIndex("[]").message()), HasSubstr("must be a JSON object"));
  EXPECT_THAT(std::string(OpenWithIndex(R"({"metadata": {}})").message()),
              HasSubstr("\"weight_map\" must be an object"));
  EXPECT_THAT(std::string(OpenWithIndex(R"({"weight_map": {"a": 1}})").message()),
              HasSubstr("weight_map entry \"a\""));
  EXPECT_THAT(std::string(OpenWithIndex(R"({"weight_map": {}, "metadata": 3})").message()),
              HasSubstr("\"metadata\" must be an object"));
}

TEST_F(ShardedIndexTest, BadShardReportsTheShardPath) {
  WriteBytes(dir_ / "model-00002-of-00002.safetensors", "12345678");
  const absl::Status status = OpenWithIndex();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("model-00002-of-00002.safetensors: header"));
}

// The fuzzer's seed corpus must stay valid input, or it seeds nothing useful.
TEST(FuzzSeedCorpus, SeedsAreValidFiles) {
  const std::filesystem::path corpus =
      std::filesystem::path(RLHF_SOURCE_DIR) / "tests/fuzz/corpus/safetensors";
  int seeds = 0;
  for (const auto& entry : std::filesystem::directory_iterator(corpus)) {
    if (entry.path().extension() != ".safetensors") continue;
    ++seeds;
    EXPECT_TRUE(SafetensorsFile::Open(entry.path()).ok()) << entry.path();
  }
  EXPECT_GE(seeds, 2);
}

}  // namespace
}  // namespace rlhf::io
