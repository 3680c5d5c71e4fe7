// TokenizeExamples: completions end with the tokenizer's eos_token, as TRL 0.24 appends
// tokenizer.eos_token_id, not generation_config's first eos id (they differ for chat
// models: <|im_end|> vs <|endoftext|>).

#include "common/jobs/tokenized_data.h"

#include <gtest/gtest.h>

namespace rlhf::jobs {
namespace {

constexpr char kChatTokenizer[] = RLHF_SOURCE_DIR "/tests/golden/fixtures/tokenizers/qwen2_chat";

TEST(TokenizedDataTest, CompletionsEndWithTheTokenizersEosToken) {
  auto tokenizer = tokenizer::Tokenizer::FromDirectory(kChatTokenizer);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  const auto im_end = (*tokenizer)->TokenToId("<|im_end|>");
  ASSERT_TRUE(im_end.has_value());
  // The fixture's generation_config lists another id first: the case this test is about.
  ASSERT_FALSE((*tokenizer)->eos_ids().empty());
  ASSERT_NE((*tokenizer)->eos_ids().front(), *im_end);

  Example sft{.prompt = "hi", .completion = " there", .line = 1};
  Example pair{.prompt = "hi", .chosen = " yes", .rejected = " no", .line = 2};
  TokenizeOptions options{.max_prompt_tokens = 16, .max_response_tokens = 16, .path = "d"};
  auto completions =
      TokenizeExamples(**tokenizer, {sft}, DatasetFormat::kPromptCompletion, options);
  ASSERT_TRUE(completions.ok()) << completions.status();
  EXPECT_EQ((*completions)[0].completion.back(), *im_end);
  auto pairs = TokenizeExamples(**tokenizer, {pair}, DatasetFormat::kPreference, options);
  ASSERT_TRUE(pairs.ok()) << pairs.status();
  EXPECT_EQ((*pairs)[0].chosen.back(), *im_end);
  EXPECT_EQ((*pairs)[0].rejected.back(), *im_end);
}

}  // namespace
}  // namespace rlhf::jobs
