// The Jinja subset against jinja2 3.1.6 as transformers 4.57.1 configures it: every case of
// tests/golden/fixtures/chat/jinja_features.json (make_jinja_feature_goldens.py) renders
// byte for byte, or fails where jinja2 fails.

#include <filesystem>
#include <fstream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/chat/jinja_template.h"

namespace rlhf::chat {
namespace {

nlohmann::ordered_json LoadCases() {
  std::ifstream in(std::filesystem::path(RLHF_SOURCE_DIR) /
                   "tests/golden/fixtures/chat/jinja_features.json");
  return nlohmann::ordered_json::parse(in);
}

TEST(JinjaGoldenTest, EveryFeatureRendersAsJinja2Does) {
  const nlohmann::ordered_json cases = LoadCases();
  ASSERT_GE(cases.size(), 35u);
  for (const auto& c : cases) {
    SCOPED_TRACE(c["name"].get<std::string>());
    ValueDict variables;
    for (const auto& [key, value] : c["variables"].items()) {
      variables.emplace_back(key, Value::FromJson(value));
    }
    auto parsed = Template::Parse(c["template"].get<std::string>());
    absl::StatusOr<std::string> rendered =
        parsed.ok() ? parsed->Render(variables) : absl::StatusOr<std::string>(parsed.status());
    if (c.contains("error")) {
      EXPECT_FALSE(rendered.ok()) << *rendered;
      continue;
    }
    ASSERT_TRUE(rendered.ok()) << rendered.status();
    EXPECT_EQ(*rendered, c["rendered"].get<std::string>());
  }
}

TEST(JinjaErrorsTest, MessagesNameTheLineAndTheConstruct) {
  auto expect_error = [](const std::string& source, const std::string& words) {
    auto parsed = Template::Parse(source);
    absl::Status status = parsed.status();
    if (parsed.ok()) status = parsed->Render({}).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << source;
    EXPECT_THAT(std::string(status.message()), ::testing::HasSubstr(words)) << source;
  };
  expect_error("a\n{% include 'x' %}", "line 2: unsupported template construct {% include %}");
  expect_error("{% for x in y %}", "missing {% endfor %}");
  expect_error("{{ 'abc }}", "unterminated string literal");
  expect_error("{{ x", "unterminated tag");
  expect_error("{{ 1 + }}", "unexpected '}}'");
  expect_error("\n\n{{ raise_exception('bad roles') }}", "raise_exception: bad roles");
  expect_error("{{ x|nosuchfilter }}", "unsupported filter 'nosuchfilter'");
  expect_error("{{ x is nosuchtest }}", "unsupported test 'nosuchtest'");
  expect_error("{{ 1 + 'a' }}", "unsupported operand types for +: int and string");
  expect_error("{{ 1 // 0 }}", "division or modulo by zero");
  expect_error("{{ 9223372036854775807 + 1 }}", "integer overflow");
  expect_error("{{ 2 ** 1000000000000 }}", "integer overflow");
  expect_error("{{ 99999999999999999999 }}", "line 1: integer literal out of range");
  expect_error("{{ 'x'|indent(100000000) }}", "indent width must be in [0, 1024]");
  expect_error("{% set x = 1 %}{% set x.y = 2 %}", "not a namespace");
  expect_error("{{ range(100000000)|length }}", "range too large");
  expect_error("{{ nothing.attr }}", "line 1: cannot read attribute 'attr' of an undefined value");
}

TEST(JinjaErrorsTest, NoTemplateHangsOrExhaustsTheStack) {
  const std::string deep_parens =
      "{{ " + std::string(1000, '(') + "1" + std::string(1000, ')') + " }}";
  std::string deep_ifs;
  for (int i = 0; i < 1000; ++i) deep_ifs += "{% if true %}";
  const std::pair<std::string, std::string> cases[] = {
      {"{% for i in range(1000000) %}{% for j in range(1000000) %}{% endfor %}{% endfor %}",
       "too much work"},
      {"{% set l = range(1000000)|list %}{% for i in range(1000000) %}{% if i in l %}{% endif %}"
       "{% endfor %}",
       "too much work"},
      {"{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "nests deeper than 64 calls"},
      {deep_parens, "nested more than 200 levels deep"},
      {deep_ifs, "nested more than 200 levels deep"},
      {"{{ " + std::string(1000, '-') + "1 }}", "nested more than 200 levels deep"},
      {"{% set ns = namespace(x=1) %}{% for i in range(2000) %}{% set ns.x = [ns.x] %}"
       "{% endfor %}{{ ns.x }}",
       "values nested more than 512 deep"},
      {"{% set ns = namespace() %}{% set ns.me = ns %}{{ ns }}", "cannot be stored"},
      {"{% set ns = namespace() %}{% set l = [ns] %}", "cannot be stored"},
  };
  for (const auto& [source, words] : cases) {
    auto parsed = Template::Parse(source);
    absl::Status status = parsed.status();
    if (parsed.ok()) status = parsed->Render({}).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << source.substr(0, 80);
    EXPECT_THAT(std::string(status.message()), ::testing::HasSubstr(words)) << source.substr(0, 80);
  }
}

TEST(JinjaErrorsTest, RunawayOutputStopsWithAnError) {
  for (const char* source : {
           "{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}",
           "{{ 'x' * 100000000000 }}",
           "{% set ns = namespace(s='xxxxxxxx') %}{% for i in range(100) %}"
           "{% set ns.s = ns.s + ns.s %}{% endfor %}",
       }) {
    auto parsed = Template::Parse(source);
    ASSERT_TRUE(parsed.ok());
    auto rendered = parsed->Render({});
    ASSERT_FALSE(rendered.ok()) << source;
    EXPECT_THAT(std::string(rendered.status().message()), ::testing::HasSubstr("64 MiB"));
  }
}

}  // namespace
}  // namespace rlhf::chat
