#pragma once

// Pre-tokenizers from tokenizers/src/pre_tokenizers/: ByteLevel, Split, Metaspace, Digits,
// Whitespace, WhitespaceSplit, Sequence. Others are reported as unimplemented.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/tokenizer/json_config.h"

namespace rlhf::tokenizer {

// One split of the input on its way to the model (a tokenizers PreTokenizedString Split).
struct Piece {
  std::string text;
  // Starts at byte 0 of the original input (offsets_original().0 == 0 in tokenizers);
  // Metaspace's prepend_scheme "first" prepends only there.
  bool at_original_start = false;
  // Set for added tokens, which are never split, normalized again, or given to the model.
  std::optional<int64_t> token_id;
};

// Immutable after parsing; PreTokenize is safe to call from several threads at once.
class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Splits (and may rewrite) every piece without a token_id; drops empty pieces.
  virtual absl::Status PreTokenize(std::vector<Piece>& pieces) const = 0;
  // True when this maps raw bytes to characters (ByteLevel), so any byte string encodes.
  virtual bool IsByteLevel() const { return false; }
};

// Parses the "pre_tokenizer" object at `path`; JSON null gives nullptr (none).
absl::StatusOr<std::unique_ptr<PreTokenizer>> ParsePreTokenizer(const Json& json,
                                                                std::string_view path,
                                                                int depth = 0);

}  // namespace rlhf::tokenizer
