#include "common/rpc/status_util.h"

#include <gtest/gtest.h>

namespace rlhf::rpc {
namespace {

TEST(StatusUtilTest, KeepsCodeAndMessage) {
  grpc::Status s = ToGrpcStatus(absl::NotFoundError("no such job"));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(s.error_message(), "no such job");
  EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok());
  absl::Status back = FromGrpcStatus(s);
  EXPECT_EQ(back.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(back.message(), "no such job");
}

TEST(StatusUtilTest, TruncatesLongMessages) {
  grpc::Status s = ToGrpcStatus(absl::InvalidArgumentError(std::string(10000, 'x')));
  EXPECT_EQ(s.error_message().size(), kMaxStatusMessageBytes);
  EXPECT_NE(s.error_message().find("[truncated]"), std::string::npos);
}

}  // namespace
}  // namespace rlhf::rpc
