#include "common/rpc/tensor_codec.h"

#include <gtest/gtest.h>

namespace rlhf::rpc {
namespace {

TEST(TensorCodecTest, RoundTripsEveryWireDtype) {
  for (auto dtype : {torch::kFloat32, torch::kFloat16, torch::kBFloat16, torch::kFloat64,
                     torch::kInt64, torch::kInt32, torch::kUInt8, torch::kBool}) {
    torch::Tensor t = (torch::arange(24) % 5).reshape({2, 3, 4}).to(dtype);
    v1::TensorProto proto;
    ASSERT_TRUE(TensorToProto(t, &proto).ok());
    EXPECT_EQ(proto.data().size(), t.nbytes());
    auto back = TensorFromProto(proto);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_TRUE(torch::equal(*back, t)) << dtype;
  }
}

TEST(TensorCodecTest, NonContiguousAndEmptyTensors) {
  torch::Tensor t = torch::arange(12, torch::kFloat32).reshape({3, 4}).t();
  v1::TensorProto proto;
  ASSERT_TRUE(TensorToProto(t, &proto).ok());
  EXPECT_TRUE(torch::equal(*TensorFromProto(proto), t));
  ASSERT_TRUE(TensorToProto(torch::zeros({0, 5}), &proto).ok());
  auto empty = TensorFromProto(proto);
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->sizes(), (std::vector<int64_t>{0, 5}));
}

TEST(TensorCodecTest, RejectsUnsupportedDtype) {
  v1::TensorProto proto;
  auto status = TensorToProto(torch::zeros({2}, torch::kComplexFloat), &proto);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("no wire encoding"), std::string::npos);
}

TEST(TensorCodecTest, RejectsBadProtos) {
  v1::TensorProto proto;
  proto.set_dtype(v1::DATA_TYPE_UNSPECIFIED);
  EXPECT_NE(TensorFromProto(proto).status().message().find("dtype"), std::string::npos);

  proto.set_dtype(v1::DATA_TYPE_F32);
  proto.add_shape(-2);
  EXPECT_NE(TensorFromProto(proto).status().message().find("negative"), std::string::npos);

  proto.clear_shape();
  proto.add_shape(int64_t{1} << 40);
  proto.add_shape(int64_t{1} << 40);
  EXPECT_NE(TensorFromProto(proto).status().message().find("overflows"), std::string::npos);

  proto.clear_shape();
  proto.add_shape(2);
  proto.set_data("abc");
  auto bad = TensorFromProto(proto);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("holds 3 bytes"), std::string::npos) << bad.status();
}

TEST(TensorCodecTest, TokenBatchRoundTripAndValidation) {
  std::vector<std::vector<int64_t>> seqs = {{1, 2, 3}, {}, {7}};
  v1::TokenBatch proto;
  TokensToProto(seqs, &proto);
  EXPECT_EQ(proto.offsets_size(), 4);
  auto back = TokensFromProto(proto);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, seqs);

  proto.set_offsets(2, 9);  // past ids
  EXPECT_EQ(TokensFromProto(proto).status().code(), absl::StatusCode::kInvalidArgument);
  v1::TokenBatch empty;
  EXPECT_NE(TokensFromProto(empty).status().message().find("start with 0"), std::string::npos);
}

}  // namespace
}  // namespace rlhf::rpc
