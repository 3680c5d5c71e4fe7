#pragma once

// Post-processors from tokenizers/src/processors/ for single sequences:
// TemplateProcessing, ByteLevel (offsets only, so a no-op on ids), Sequence.
// RobertaProcessing and BertProcessing are reported as unimplemented.

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/tokenizer/json_config.h"

namespace rlhf::tokenizer {

// Immutable after parsing; safe to call from several threads at once.
class PostProcessor {
 public:
  virtual ~PostProcessor() = default;
  // Adds the special tokens of a single sequence around `ids` (when add_special_tokens).
  virtual void Process(std::vector<int64_t>& ids, bool add_special_tokens) const = 0;
  // Every id Process may add, so the loader can check they are in the vocabulary.
  virtual std::vector<int64_t> SpecialIds() const { return {}; }
};

// Parses the "post_processor" object at `path`; JSON null gives nullptr (ids unchanged).
absl::StatusOr<std::unique_ptr<PostProcessor>> ParsePostProcessor(const Json& json,
                                                                  std::string_view path,
                                                                  int depth = 0);

// TemplateProcessing "$A" wrapped in optional prefix/suffix ids: what transformers'
// LlamaTokenizerFast.update_post_processor builds from add_bos_token/add_eos_token.
std::unique_ptr<PostProcessor> MakeTemplate(std::vector<int64_t> prefix,
                                            std::vector<int64_t> suffix);

}  // namespace rlhf::tokenizer
