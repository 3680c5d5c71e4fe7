#pragma once

#include <string>
#include <vector>

namespace rlhf::cli {

// `rlhf best-of-n`: rejection sampling / best-of-N (RAFT, expert iteration) as a dataset
// tool: for every prompt of a JSONL file, sample N completions from a model, score them
// with a reward model or a verifier, keep the best (or every one at or above a
// threshold), and write them as a TRL prompt-completion dataset that an `sft` job trains
// on. Exit 2 on bad flags or input, 1 on other errors.
int RunBestOfN(const std::vector<std::string>& args);

}  // namespace rlhf::cli
