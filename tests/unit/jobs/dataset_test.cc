#include "common/jobs/dataset.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/unit/jobs/test_util.h"

namespace rlhf::jobs {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(DatasetTest, ReadsEachFormat) {
  testing::TempDir dir;
  auto prompts = ReadJsonlDataset(
      dir.Write("p.jsonl", "{\"prompt\": \"a\", \"reference\": \"x\"}\n\n{\"prompt\": \"b\"}\r\n"),
      DatasetFormat::kPromptOnly);
  ASSERT_TRUE(prompts.ok()) << prompts.status();
  ASSERT_EQ(prompts->size(), 2u);
  EXPECT_EQ((*prompts)[0].reference, "x");
  EXPECT_EQ((*prompts)[1].prompt, "b");
  EXPECT_EQ((*prompts)[1].line, 3);

  auto sft = ReadJsonlDataset(dir.Write("s.jsonl", "{\"prompt\": \"q\", \"completion\": \"a\"}\n"),
                              DatasetFormat::kPromptCompletion);
  ASSERT_TRUE(sft.ok()) << sft.status();
  EXPECT_EQ((*sft)[0].completion, "a");

  auto pref = ReadJsonlDataset(
      dir.Write("d.jsonl",
                "{\"prompt\": \"q\", \"chosen\": \"c\", \"rejected\": \"r\", \"x\": 1}\n"),
      DatasetFormat::kPreference);
  ASSERT_TRUE(pref.ok()) << pref.status();
  EXPECT_EQ((*pref)[0].chosen, "c");
  EXPECT_EQ((*pref)[0].rejected, "r");

  auto kto =
      ReadJsonlDataset(dir.Write("k.jsonl",
                                 "{\"prompt\": \"q\", \"completion\": \"a\", \"label\": true}\n"
                                 "{\"prompt\": \"q\", \"completion\": \"b\", \"label\": false}\n"),
                       DatasetFormat::kUnpairedPreference);
  ASSERT_TRUE(kto.ok()) << kto.status();
  EXPECT_TRUE((*kto)[0].label);
  EXPECT_FALSE((*kto)[1].label);
}

TEST(DatasetTest, ReportsEveryBadLineWithItsNumber) {
  testing::TempDir dir;
  const std::string path =
      dir.Write("bad.jsonl",
                "{\"prompt\": \"ok\", \"chosen\": \"c\", \"rejected\": \"r\"}\n"
                "{\"prompt\": \"secret-value\n"
                "{\"prompt\": \"q\", \"chosen\": \"c\"}\n"
                "{\"prompt\": 3, \"chosen\": \"c\", \"rejected\": \"r\"}\n"
                "{\"prompt\": \"\", \"chosen\": \"c\", \"rejected\": \"r\"}\n"
                "[1, 2]\n"
                "{\"prompt\": [{\"role\": \"user\", \"content\": \"hi\"}], "
                "\"chosen\": \"c\", \"rejected\": \"r\"}\n");
  auto result = ReadJsonlDataset(path, DatasetFormat::kPreference);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  const std::string message(result.status().message());
  EXPECT_THAT(message, Not(HasSubstr(path + ":1:")));
  EXPECT_THAT(message, HasSubstr(path + ":2: not JSON"));
  EXPECT_THAT(message, Not(HasSubstr("secret-value")));  // never the file's contents
  EXPECT_THAT(message, HasSubstr(path + ":3: missing field \"rejected\""));
  EXPECT_THAT(message, HasSubstr(path + ":4: field \"prompt\" must be a string, not number"));
  EXPECT_THAT(message, HasSubstr(path + ":5: empty prompt"));
  EXPECT_THAT(message, HasSubstr(path + ":6: expected a JSON object, got array"));
  EXPECT_THAT(message, HasSubstr(path + ":7: field \"chosen\" must be a list of messages like "
                                        "the prompt, not string"));
}

TEST(DatasetTest, KtoLabelMustBeBoolean) {
  testing::TempDir dir;
  auto result =
      ReadJsonlDataset(dir.Write("k.jsonl",
                                 "{\"prompt\": \"q\", \"completion\": \"a\", \"label\": 1}\n"
                                 "{\"prompt\": \"q\", \"completion\": \"a\"}\n"),
                       DatasetFormat::kUnpairedPreference);
  ASSERT_FALSE(result.ok());
  EXPECT_THAT(result.status().message(), HasSubstr(":1: field \"label\" must be a boolean"));
  EXPECT_THAT(result.status().message(), HasSubstr(":2: missing field \"label\""));
}

TEST(DatasetTest, CapsTheNumberOfReportedLines) {
  testing::TempDir dir;
  std::string content;
  for (int i = 0; i < 30; ++i) content += "x\n";
  auto result = ReadJsonlDataset(dir.Write("many.jsonl", content), DatasetFormat::kPromptOnly,
                                 {.max_reported_errors = 5});
  ASSERT_FALSE(result.ok());
  EXPECT_THAT(result.status().message(), HasSubstr(":5: not JSON"));
  EXPECT_THAT(result.status().message(), Not(HasSubstr(":6: not JSON")));
  EXPECT_THAT(result.status().message(), HasSubstr("and 25 more bad lines"));
}

TEST(DatasetTest, MissingAndEmptyFiles) {
  testing::TempDir dir;
  auto missing = ReadJsonlDataset(dir.File("nope.jsonl"), DatasetFormat::kPromptOnly);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  auto empty = ReadJsonlDataset(dir.Write("e.jsonl", "\n  \n"), DatasetFormat::kPromptOnly);
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(empty.status().message(), HasSubstr("no examples"));
}

TEST(DatasetTest, InvalidUtf8IsABadLine) {
  testing::TempDir dir;
  auto result =
      ReadJsonlDataset(dir.Write("u.jsonl", "{\"prompt\": \"ok\"}\n{\"prompt\": \"\xff\"}\n"),
                       DatasetFormat::kPromptOnly);
  ASSERT_FALSE(result.ok());
  EXPECT_THAT(result.status().message(), HasSubstr("u.jsonl:2: not JSON"));
}

TEST(DatasetTest, FormatForAlgorithm) {
  EXPECT_EQ(*DatasetFormatForAlgorithm("grpo"), DatasetFormat::kPromptOnly);
  EXPECT_EQ(*DatasetFormatForAlgorithm("sft"), DatasetFormat::kPromptCompletion);
  EXPECT_EQ(*DatasetFormatForAlgorithm("simpo"), DatasetFormat::kPreference);
  EXPECT_EQ(*DatasetFormatForAlgorithm("kto"), DatasetFormat::kUnpairedPreference);
  EXPECT_FALSE(DatasetFormatForAlgorithm("trpo").ok());
}

TEST(DatasetTest, BundledExamplesParse) {
  const std::string root = RLHF_SOURCE_DIR;
  EXPECT_TRUE(
      ReadJsonlDataset(root + "/examples/data/prompts.jsonl", DatasetFormat::kPromptOnly).ok());
  EXPECT_TRUE(
      ReadJsonlDataset(root + "/examples/data/preference.jsonl", DatasetFormat::kPreference).ok());
}

}  // namespace
}  // namespace rlhf::jobs
