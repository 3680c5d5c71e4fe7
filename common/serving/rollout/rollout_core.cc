#include "common/serving/rollout/rollout_core.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/model/generation.h"
#include "common/model/limits.h"
#include "common/rpc/tensor_codec.h"
#include "common/status/torch_status.h"

namespace rlhf::rollout {
namespace {

absl::StatusOr<model::SamplingParams> ToSamplingParams(const v1::SamplingParams& proto) {
  model::SamplingParams params;
  if (proto.max_new_tokens() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("sampling.max_new_tokens must be >= 0, got ", proto.max_new_tokens()));
  }
  params.max_new_tokens = proto.max_new_tokens() == 0 ? 64 : proto.max_new_tokens();
  params.greedy = proto.temperature() == 0.0f;
  params.temperature = params.greedy ? 1.0f : proto.temperature();
  params.top_k = proto.top_k();
  params.top_p = proto.top_p() == 0.0f ? 1.0f : proto.top_p();
  params.stop_ids.assign(proto.stop_ids().begin(), proto.stop_ids().end());
  if (auto status = model::ValidateSamplingParams(params); !status.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("sampling: ", status.message()));
  }
  return params;
}

v1::FinishReason ToProto(model::FinishReason reason) {
  switch (reason) {
    case model::FinishReason::kEos:
      return v1::FINISH_REASON_EOS;
    case model::FinishReason::kStop:
      return v1::FINISH_REASON_STOP;
    case model::FinishReason::kLength:
      return v1::FINISH_REASON_LENGTH;
  }
  return v1::FINISH_REASON_UNSPECIFIED;
}

}  // namespace

RolloutCore::RolloutCore(std::shared_ptr<model::CausalLm> model, int64_t version)
    : model_(std::move(model)), version_(version) {
  model_->eval();
}

torch::ScalarType RolloutCore::dtype() {
  std::lock_guard<std::mutex> lock(mutex_);
  return model_->dtype();
}

int64_t RolloutCore::version() {
  std::lock_guard<std::mutex> lock(mutex_);
  return version_;
}

std::map<std::string, std::vector<int64_t>> RolloutCore::ParameterShapes() {
  std::lock_guard<std::mutex> lock(mutex_);
  std::map<std::string, std::vector<int64_t>> shapes;
  for (const auto& item : model_->named_parameters()) {
    shapes[item.key()] = item.value().sizes().vec();
  }
  return shapes;
}

absl::Status RolloutCore::Generate(const v1::GenerateRequest& request,
                                   v1::GenerateResponse* response,
                                   const std::function<bool()>& abandoned) {
  auto prompts = rpc::TokensFromProto(request.prompts());
  if (!prompts.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("prompts: ", prompts.status().message()));
  }
  if (prompts->empty()) return absl::InvalidArgumentError("prompts is empty");
  if (request.samples_per_prompt() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("samples_per_prompt must be >= 0, got ", request.samples_per_prompt()));
  }
  const int64_t n = request.samples_per_prompt() == 0 ? 1 : request.samples_per_prompt();
  const int64_t total = static_cast<int64_t>(prompts->size()) * n;
  if (total > kMaxCompletionsPerCall) {
    return absl::InvalidArgumentError(absl::StrCat(prompts->size(), " prompts x ", n,
                                                   " samples exceeds ", kMaxCompletionsPerCall,
                                                   " completions per call"));
  }
  auto params = ToSamplingParams(request.sampling());
  if (!params.ok()) return params.status();
  // Checked before the prompts are copied once per sample: every sequence fits the
  // model's context, and the whole batch the KV cache and padding will hold is bounded.
  const int64_t context = model_->config().max_position_embeddings;
  int64_t longest = 0;
  for (size_t i = 0; i < prompts->size(); ++i) {
    const int64_t length = static_cast<int64_t>((*prompts)[i].size());
    if (context > 0 && length + params->max_new_tokens > context) {
      return absl::InvalidArgumentError(absl::StrCat(
          "prompt ", i, " has ", length, " tokens; with max_new_tokens ", params->max_new_tokens,
          " that is longer than the model's context of ", context, " tokens"));
    }
    longest = std::max(longest, length);
  }
  if (auto s = model::CheckPaddedSize(total, longest + params->max_new_tokens); !s.ok()) {
    return s;
  }

  std::vector<std::vector<int64_t>> expanded;
  std::vector<uint64_t> seeds;
  expanded.reserve(total);
  seeds.reserve(total);
  for (const auto& prompt : *prompts) {
    for (int64_t j = 0; j < n; ++j) {
      seeds.push_back(request.seed() + expanded.size());
      expanded.push_back(prompt);
    }
  }

  std::lock_guard<std::mutex> lock(mutex_);
  auto output = model::Generate(*model_, expanded, *params, seeds, abandoned);
  if (!output.ok()) return output.status();
  rpc::TokensToProto(output->tokens, response->mutable_completions());
  std::vector<float> flat;
  for (const auto& logprobs : output->logprobs)
    flat.insert(flat.end(), logprobs.begin(), logprobs.end());
  const torch::Tensor logprobs =
      torch::from_blob(flat.data(), {static_cast<int64_t>(flat.size())}, torch::kFloat32);
  if (auto status = rpc::TensorToProto(logprobs, response->mutable_sampling_logprobs());
      !status.ok()) {
    return status;
  }
  for (auto reason : output->finish_reasons) response->add_finish_reasons(ToProto(reason));
  response->set_policy_version(version_);
  return absl::OkStatus();
}

absl::StatusOr<int64_t> RolloutCore::SwapWeights(const AssembledWeights& weights) {
  return Install(weights, /*share=*/false);
}

absl::StatusOr<int64_t> RolloutCore::ShareWeights(const AssembledWeights& weights) {
  return Install(weights, /*share=*/true);
}

absl::StatusOr<int64_t> RolloutCore::Install(const AssembledWeights& weights, bool share) {
  std::lock_guard<std::mutex> lock(mutex_);
  absl::Status status = CatchTorchErrors("load weights", [&]() -> absl::Status {
    torch::NoGradGuard no_grad;
    for (auto& item : model_->named_parameters()) {
      auto it = weights.tensors.find(item.key());
      if (it == weights.tensors.end()) {
        return absl::InvalidArgumentError(absl::StrCat("tensor '", item.key(), "' missing"));
      }
      if (it->second.sizes() != item.value().sizes()) {
        return absl::InvalidArgumentError(
            absl::StrCat("tensor '", item.key(), "' has the wrong shape"));
      }
    }
    // Everything is checked before the first copy, so the copies below cannot leave a
    // mix of old and new weights behind (short of running out of memory).
    for (auto& item : model_->named_parameters()) {
      const torch::Tensor& source = weights.tensors.at(item.key());
      if (share && source.scalar_type() == item.value().scalar_type() &&
          source.device() == item.value().device()) {
        item.value().set_data(source);  // this parameter's own storage is released
      } else {
        item.value().copy_(source);
      }
    }
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  version_ = weights.version;
  return version_;
}

}  // namespace rlhf::rollout
