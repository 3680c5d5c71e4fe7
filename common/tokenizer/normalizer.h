#pragma once

// Normalizers from tokenizers/src/normalizers/: NFC, NFD, NFKC, NFKD (via utf8proc),
// Lowercase, Strip, Prepend, Replace, Sequence. Others are reported as unimplemented.

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "common/tokenizer/json_config.h"

namespace rlhf::tokenizer {

// Immutable after parsing; Normalize is safe to call from several threads at once.
class Normalizer {
 public:
  virtual ~Normalizer() = default;
  // `text` may hold ill-formed UTF-8 only for byte-level pipelines; such bytes are kept.
  virtual absl::StatusOr<std::string> Normalize(std::string_view text) const = 0;
};

// Parses the "normalizer" object at `path`; JSON null gives nullptr (no normalizer).
absl::StatusOr<std::unique_ptr<Normalizer>> ParseNormalizer(const Json& json, std::string_view path,
                                                            int depth = 0);

}  // namespace rlhf::tokenizer
