#pragma once

// Decoders from tokenizers/src/decoders/: ByteLevel, ByteFallback, Fuse, Strip, Replace,
// Metaspace, Sequence. Others are reported as unimplemented.

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/tokenizer/json_config.h"

namespace rlhf::tokenizer {

// Immutable after parsing; safe to call from several threads at once.
class Decoder {
 public:
  virtual ~Decoder() = default;
  // Decoder::decode_chain: rewrites the token strings; the caller joins the result.
  virtual absl::Status DecodeChain(std::vector<std::string>& tokens) const = 0;
};

// Parses the "decoder" object at `path`; JSON null gives nullptr (tokens joined by " ").
absl::StatusOr<std::unique_ptr<Decoder>> ParseDecoder(const Json& json, std::string_view path,
                                                      int depth = 0);

}  // namespace rlhf::tokenizer
