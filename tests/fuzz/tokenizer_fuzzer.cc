// libFuzzer target for rlhf::tokenizer. The first input byte picks the mode:
//   0-5  encode the rest with one of the fixture tokenizers (gpt2, llama3, qwen2, llama2,
//        mistral, added_tokens) and decode the ids again; for gpt2 (byte-level, no
//        normalizer) valid UTF-8 must round-trip exactly.
//   6-7  parse the rest as a tokenizer.json; when it loads, encode and decode with it.
// Beyond "no crash, no hang", every error must come back as a Status.
//
// Fixtures are read from $RLHF_TOKENIZER_FIXTURES or from the source tree next to this
// file (tests/golden/fixtures/tokenizers); a tiny built-in tokenizer stands in when
// neither is there. Seeds: tests/fuzz/corpus/tokenizer. Run with a scratch corpus first:
//   tokenizer_fuzzer corpus-tokenizer/ tests/fuzz/corpus/tokenizer

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/tokenizer/tokenizer.h"
#include "common/tokenizer/utf8.h"

namespace {

using rlhf::tokenizer::Tokenizer;

constexpr const char* kFixtureNames[] = {"gpt2",   "llama3",  "qwen2",
                                         "llama2", "mistral", "added_tokens"};
constexpr int kFixtureCount = 6;

// A byte-level BPE small enough to embed: the fallback when no fixtures are found.
constexpr std::string_view kTinyTokenizer = R"({
  "added_tokens": [{"id": 9, "content": "<|end|>", "special": true, "normalized": false}],
  "normalizer": {"type": "NFC"},
  "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "use_regex": true},
  "post_processor": {"type": "ByteLevel"},
  "decoder": {"type": "ByteLevel"},
  "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2, "Ġ": 3, "Ġab": 4},
            "merges": ["a b", "Ġ ab"]}})";

void Check(bool condition) {
  if (!condition) std::abort();
}

std::filesystem::path FixtureDir() {
  if (const char* dir = std::getenv("RLHF_TOKENIZER_FIXTURES")) return dir;
  return std::filesystem::path(__FILE__).parent_path().parent_path() / "golden/fixtures/tokenizers";
}

struct Fixture {
  std::unique_ptr<Tokenizer> tokenizer;
  bool from_files = false;  // false: the built-in stand-in
};

const std::vector<Fixture>& Fixtures() {
  static const auto* fixtures = [] {
    auto* loaded = new std::vector<Fixture>();
    for (const char* name : kFixtureNames) {
      auto tok = Tokenizer::FromDirectory(FixtureDir() / name);
      const bool from_files = tok.ok();
      if (!from_files) tok = Tokenizer::FromString(kTinyTokenizer);
      Check(tok.ok());
      loaded->push_back(Fixture{*std::move(tok), from_files});
    }
    return loaded;
  }();
  return *fixtures;
}

void EncodeDecode(const Tokenizer& tok, std::string_view text, bool must_round_trip) {
  for (bool add_special : {true, false}) {
    absl::StatusOr<std::vector<int64_t>> ids = tok.Encode(text, add_special);
    if (!ids.ok()) continue;  // e.g. invalid UTF-8 for a SentencePiece-style tokenizer
    for (int64_t id : *ids) Check(id >= 0 && id < tok.vocab_size());
    absl::StatusOr<std::string> decoded = tok.Decode(*ids);
    Check(decoded.ok());
    Check(tok.Decode(*ids, /*skip_special_tokens=*/true).ok());
    if (must_round_trip && !add_special) Check(*decoded == text);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const int mode = data[0] % 8;
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (mode < kFixtureCount) {
    const Fixture& fixture = Fixtures()[mode];
    const Tokenizer& tok = *fixture.tokenizer;
    const bool valid_utf8 = !rlhf::tokenizer::FindInvalidUtf8(rest).has_value();
    EncodeDecode(tok, rest, /*must_round_trip=*/mode == 0 && fixture.from_files && valid_utf8);
    // Arbitrary ids: in range or a clean error, never a crash.
    std::vector<int64_t> ids;
    for (size_t i = 0; i + 1 < rest.size() && ids.size() < 64; i += 2) {
      ids.push_back(static_cast<int16_t>((rest[i] & 0xFF) | (rest[i + 1] << 8)));
    }
    absl::StatusOr<std::string> decoded = tok.Decode(ids);
    (void)decoded;
    return 0;
  }
  absl::StatusOr<std::unique_ptr<Tokenizer>> tok = Tokenizer::FromString(rest);
  if (!tok.ok()) return 0;
  for (std::string_view text : {std::string_view("Hello world, héllo 中文 😀 <s>"),
                                std::string_view("  \n\t a"), std::string_view("")}) {
    EncodeDecode(**tok, text, /*must_round_trip=*/false);
  }
  return 0;
}
