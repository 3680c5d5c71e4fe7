#pragma once

#include <string>
#include <vector>

namespace rlhf::cli {

// `rlhf generate`: loads a Hugging Face model directory, encodes --prompt with its
// tokenizer, samples a continuation and prints it. Returns the process exit status.
int RunGenerate(const std::vector<std::string>& args);

}  // namespace rlhf::cli
