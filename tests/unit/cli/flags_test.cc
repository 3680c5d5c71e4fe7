#include "common/cli/flags.h"

#include <gtest/gtest.h>

namespace rlhf::cli {
namespace {

struct Parsed {
  std::string model;
  int64_t max_new_tokens = 64;
  uint64_t seed = 0;
  double temperature = 1.0;
  bool greedy = false;
};

FlagSet MakeFlags(Parsed& p) {
  FlagSet flags("rlhf generate", "Generates text.");
  flags.String("model", &p.model, "model directory", /*required=*/true);
  flags.Int("max-new-tokens", &p.max_new_tokens, "tokens to generate");
  flags.UInt("seed", &p.seed, "sampling seed");
  flags.Float("temperature", &p.temperature, "softmax temperature");
  flags.Bool("greedy", &p.greedy, "argmax decoding");
  return flags;
}

absl::Status ParseArgs(Parsed& p, std::vector<std::string> args) {
  FlagSet flags = MakeFlags(p);
  return flags.Parse(args);
}

TEST(FlagsTest, ParsesBothSyntaxesAndBareBooleans) {
  Parsed p;
  ASSERT_TRUE(ParseArgs(p, {"--model", "m", "--max-new-tokens=5", "--temperature", "0.5",
                            "--greedy", "--seed=7"})
                  .ok());
  EXPECT_EQ(p.model, "m");
  EXPECT_EQ(p.max_new_tokens, 5);
  EXPECT_DOUBLE_EQ(p.temperature, 0.5);
  EXPECT_TRUE(p.greedy);
  EXPECT_EQ(p.seed, 7u);
}

TEST(FlagsTest, KeepsDefaultsAndPositionals) {
  Parsed p;
  FlagSet flags = MakeFlags(p);
  std::vector<std::string> args = {"job.json", "--model=m", "--", "--not-a-flag"};
  ASSERT_TRUE(flags.Parse(args).ok());
  EXPECT_EQ(p.max_new_tokens, 64);
  EXPECT_EQ(flags.positional(), (std::vector<std::string>{"job.json", "--not-a-flag"}));
}

TEST(FlagsTest, GivenTellsTypedFlagsFromDefaults) {
  Parsed p;
  FlagSet flags = MakeFlags(p);
  std::vector<std::string> args = {"--model=m", "--seed", "0", "--", "--greedy"};
  ASSERT_TRUE(flags.Parse(args).ok());
  EXPECT_TRUE(flags.Given("model"));
  EXPECT_TRUE(flags.Given("seed"));     // typed, even though it equals the default
  EXPECT_FALSE(flags.Given("greedy"));  // after "--": a positional
  EXPECT_FALSE(flags.Given("temperature"));
  EXPECT_FALSE(flags.Given("no-such-flag"));
}

TEST(FlagsTest, ErrorsNameTheFlag) {
  Parsed p;
  auto unknown = ParseArgs(p, {"--model=m", "--temprature=1"});
  EXPECT_NE(unknown.message().find("unknown flag --temprature"), std::string::npos) << unknown;
  auto bad_int = ParseArgs(p, {"--model=m", "--max-new-tokens", "ten"});
  EXPECT_NE(bad_int.message().find("--max-new-tokens: \"ten\" is not an integer"),
            std::string::npos)
      << bad_int;
  auto negative = ParseArgs(p, {"--model=m", "--seed=-1"});
  EXPECT_NE(negative.message().find("--seed"), std::string::npos);
  auto nan = ParseArgs(p, {"--model=m", "--temperature=nan"});
  EXPECT_NE(nan.message().find("finite"), std::string::npos);
  auto missing_value = ParseArgs(p, {"--model"});
  EXPECT_NE(missing_value.message().find("needs a value"), std::string::npos);
  auto missing_required = ParseArgs(p, {"--greedy"});
  EXPECT_NE(missing_required.message().find("missing required flag --model"), std::string::npos);
}

TEST(FlagsTest, HelpListsEveryFlagWithDefault) {
  Parsed p;
  FlagSet flags = MakeFlags(p);
  std::vector<std::string> args = {"--help"};
  ASSERT_TRUE(flags.Parse(args).ok());
  EXPECT_TRUE(flags.help_requested());
  const std::string usage = flags.Usage();
  for (const char* name : {"--model", "--max-new-tokens", "--seed", "--temperature", "--greedy"}) {
    EXPECT_NE(usage.find(name), std::string::npos) << name;
  }
  EXPECT_NE(usage.find("(64)"), std::string::npos) << usage;
}

TEST(FlagsTest, ASummaryWithItsOwnUsageLineSaysUsageOnce) {
  std::string model;
  FlagSet flags("rlhf local", "Runs a job.\nusage: rlhf local JOB.json [flags]");
  flags.String("model", &model, "model directory");
  const std::string usage = flags.Usage();
  EXPECT_EQ(usage.find("usage:"), usage.rfind("usage:")) << usage;
  EXPECT_NE(usage.find("rlhf local JOB.json"), std::string::npos) << usage;
  FlagSet plain("rlhf-actor", "Serves the actor.");
  EXPECT_EQ(plain.Usage().rfind("usage: rlhf-actor [flags]", 0), 0u) << plain.Usage();
}

}  // namespace
}  // namespace rlhf::cli
