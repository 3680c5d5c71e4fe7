#include "common/train/policy_trainer.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "common/jobs/metric_names.h"
#include "common/model/loader.h"
#include "common/model/precision.h"
#include "common/model/token_logprobs.h"
#include "common/status/torch_status.h"
#include "common/train/multi_tensor_step.h"
#include "common/train/train_stats.h"

namespace rlhf::train {

std::vector<std::vector<int64_t>> SplitRows(int64_t rows, int64_t parts) {
  parts = std::max<int64_t>(1, std::min(parts, rows));
  std::vector<std::vector<int64_t>> out;
  int64_t start = 0;
  for (int64_t p = 0; p < parts; ++p) {
    const int64_t end = start + rows / parts + (p < rows % parts ? 1 : 0);
    std::vector<int64_t> part;
    for (int64_t r = start; r < end; ++r) part.push_back(r);
    if (!part.empty()) out.push_back(std::move(part));
    start = end;
  }
  return out;
}

PolicyTrainer::PolicyTrainer(std::shared_ptr<model::CausalLm> model,
                             std::shared_ptr<model::SequenceClassifier> classifier,
                             TrainerOptions options,
                             std::shared_ptr<GradientAllReducer> all_reducer)
    : model_(std::move(model)),
      classifier_(std::move(classifier)),
      options_(std::move(options)),
      all_reducer_(std::move(all_reducer)) {
  if (!all_reducer_) all_reducer_ = std::make_shared<SingleRankAllReducer>();
  std::vector<torch::Tensor> params;
  torch::nn::Module& module = model_ ? static_cast<torch::nn::Module&>(*model_)
                                     : static_cast<torch::nn::Module&>(*classifier_);
  for (auto& item : module.named_parameters(/*recurse=*/true)) {
    item.value().set_requires_grad(true);
    parameters_.emplace_back(item.key(), item.value());
    params.push_back(item.value());
  }
  const OptimizerOptions& o = options_.optimizer;
  optimizer_ =
      std::make_unique<torch::optim::AdamW>(params, torch::optim::AdamWOptions(o.learning_rate)
                                                        .betas({o.beta1, o.beta2})
                                                        .eps(o.eps)
                                                        .weight_decay(o.weight_decay));
}

absl::StatusOr<std::unique_ptr<PolicyTrainer>> PolicyTrainer::Create(
    std::shared_ptr<model::CausalLm> model, TrainerOptions options,
    std::shared_ptr<GradientAllReducer> all_reducer) {
  if (!model) return absl::InvalidArgumentError("PolicyTrainer: model is null");
  if (auto s = CheckOptions(options); !s.ok()) return s;
  return CatchTorchErrors("PolicyTrainer", [&]() -> absl::StatusOr<std::unique_ptr<PolicyTrainer>> {
    return std::unique_ptr<PolicyTrainer>(
        new PolicyTrainer(std::move(model), nullptr, std::move(options), std::move(all_reducer)));
  });
}

absl::StatusOr<std::unique_ptr<PolicyTrainer>> PolicyTrainer::CreateRewardModel(
    std::shared_ptr<model::SequenceClassifier> model, TrainerOptions options,
    std::shared_ptr<GradientAllReducer> all_reducer) {
  if (!model) return absl::InvalidArgumentError("PolicyTrainer: reward model is null");
  if (auto s = CheckOptions(options); !s.ok()) return s;
  return CatchTorchErrors("PolicyTrainer", [&]() -> absl::StatusOr<std::unique_ptr<PolicyTrainer>> {
    return std::unique_ptr<PolicyTrainer>(
        new PolicyTrainer(nullptr, std::move(model), std::move(options), std::move(all_reducer)));
  });
}

absl::StatusOr<std::unique_ptr<PolicyTrainer>> PolicyTrainer::LoadRewardModel(
    const std::filesystem::path& dir, TrainerOptions options,
    std::shared_ptr<GradientAllReducer> all_reducer) {
  model::LoadOptions load;
  load.device = options.device;
  auto model = model::LoadSequenceClassifier(dir, load);
  if (!model.ok()) return model.status();
  if (!options.tokenizer_dir) options.tokenizer_dir = dir;
  return CreateRewardModel(std::move(*model), std::move(options), std::move(all_reducer));
}

absl::Status PolicyTrainer::RequirePolicy(const char* what) const {
  if (model_ != nullptr) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrCat(what, ": this trainer holds a reward model, not a policy"));
}

absl::Status PolicyTrainer::CheckOptions(const TrainerOptions& options) {
  if (auto s = ValidateOptimizerOptions(options.optimizer); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("PolicyTrainer: ", s.message()));
  }
  if (options.chunk_tokens < 1) {
    return absl::InvalidArgumentError("PolicyTrainer: chunk_tokens must be >= 1");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<PolicyTrainer>> PolicyTrainer::Load(
    const std::filesystem::path& dir, bool value_head, TrainerOptions options,
    std::shared_ptr<GradientAllReducer> all_reducer) {
  model::LoadOptions load;
  load.value_head = value_head;
  load.device = options.device;
  auto model = model::LoadCausalLm(dir, load);
  if (!model.ok()) return model.status();
  if (!options.tokenizer_dir) options.tokenizer_dir = dir;
  return Create(std::move(*model), std::move(options), std::move(all_reducer));
}

absl::StatusOr<EvaluateResult> PolicyTrainer::Evaluate(const SequenceBatch& batch,
                                                       double temperature, bool values,
                                                       Precision precision) {
  if (auto s = RequirePolicy("Evaluate"); !s.ok()) return s;
  if (!(temperature > 0)) return absl::InvalidArgumentError("temperature must be > 0");
  if (values && !model_->has_value_head()) {
    return absl::InvalidArgumentError("values requested but the model has no value head");
  }
  auto padded = BuildPaddedBatch(batch, model_->config().vocab_size, options_.pad_token_id);
  if (!padded.ok()) return padded.status();
  return CatchTorchErrors("Evaluate", [&]() -> absl::StatusOr<EvaluateResult> {
    EvaluateResult result;
    result.policy_version = policy_version_;
    {
      torch::InferenceMode guard;
      model::AutocastGuard autocast(model_->device(), precision == Precision::kBf16Mixed);
      model::TokenLogprobsOptions options;
      options.chunk_tokens = options_.chunk_tokens;
      options.temperature = static_cast<float>(temperature);
      auto out = model::ComputeTokenLogprobsByRows(*model_, padded->input_ids,
                                                   padded->attention_mask, options);
      if (!out.ok()) return out.status();
      result.logprobs = GatherResponseTokens(out->logprobs, *padded);
      result.entropy = GatherResponseTokens(out->entropy, *padded);
      if (values) {
        const int64_t width = out->logprobs.size(1);
        result.values = GatherResponseTokens(out->values.slice(1, 0, width), *padded);
      }
    }
    // Outside InferenceMode: normal tensors, usable later as data in autograd graphs.
    result.logprobs = result.logprobs.to(torch::kFloat32).clone();
    result.entropy = result.entropy.to(torch::kFloat32).clone();
    if (result.values.defined()) result.values = result.values.to(torch::kFloat32).clone();
    return result;
  });
}

absl::Status PolicyTrainer::BeginStep(const AlgorithmConfig& config) {
  if (auto s = ValidateAlgorithmConfig(config); !s.ok()) return s;
  const OptimizerOptions& o = config.optimizer.value_or(options_.optimizer);
  for (auto& group : optimizer_->param_groups()) {
    static_cast<torch::optim::AdamWOptions&>(group.options())
        .lr(o.learning_rate)
        .betas({o.beta1, o.beta2})
        .eps(o.eps)
        .weight_decay(o.weight_decay);
  }
  model::DecoderModel& model = model_ ? static_cast<model::DecoderModel&>(*model_)
                                      : static_cast<model::DecoderModel&>(*classifier_);
  model.decoder().set_gradient_checkpointing(config.gradient_checkpointing);
  return absl::OkStatus();
}

absl::StatusOr<double> PolicyTrainer::OptimizerStep(const AlgorithmConfig& config) {
  std::vector<torch::Tensor> grads;
  const bool collective = all_reducer_->world_size() > 1;
  for (auto& [name, param] : parameters_) {
    // Ranks all-reduce the same list: a parameter this rank's minibatch did not reach gets
    // zeros. One rank leaves it without a gradient, so AdamW skips it (torch's semantics).
    if (collective && !param.grad().defined()) param.mutable_grad() = torch::zeros_like(param);
    if (param.grad().defined()) grads.push_back(param.mutable_grad());
  }
  if (auto s = all_reducer_->AllReduceMean(grads); !s.ok()) return s;
  const double max_norm = config.optimizer.value_or(options_.optimizer).max_grad_norm;
  const double grad_norm =
      ClipGradNorm(grads, max_norm > 0 ? max_norm : std::numeric_limits<double>::infinity());
  if (!std::isfinite(grad_norm)) {
    optimizer_->zero_grad();
    return absl::InvalidArgumentError(absl::StrCat("gradient norm is ", grad_norm,
                                                   "; step skipped (check the inputs for "
                                                   "inf/NaN)"));
  }
  FusedAdamWStep(*optimizer_);
  optimizer_->zero_grad();
  ++policy_version_;
  return grad_norm;
}

absl::StatusOr<model::TokenLogprobs> PolicyTrainer::Forward(const PaddedBatch& mb,
                                                            double temperature, bool entropy) {
  model::TokenLogprobsOptions options;
  options.chunk_tokens = options_.chunk_tokens;
  options.temperature = static_cast<float>(temperature);
  options.compute_entropy = entropy;
  const torch::Device device = model_->device();
  return model::ComputeTokenLogprobs(*model_, mb.input_ids.to(device), mb.attention_mask.to(device),
                                     options);
}

absl::StatusOr<bool> PolicyTrainer::Interrupted() {
  bool stop = interrupt_ != nullptr && interrupt_();
  if (all_reducer_->world_size() > 1) {
    std::vector<torch::Tensor> flag = {torch::full({1}, stop ? 1.0f : 0.0f)};
    if (auto s = all_reducer_->AllReduceMean(flag); !s.ok()) return s;
    stop = flag[0].item<float>() > 0;
  }
  return stop;
}

absl::StatusOr<TrainStats> PolicyTrainer::RunMinibatches(const RowShapes& shapes,
                                                         const AlgorithmConfig& config,
                                                         const MinibatchLoss& minibatch_loss) {
  const torch::Device device = model_ ? model_->device() : classifier_->device();
  StatsAccumulator stats;
  for (int64_t epoch = 0; epoch < config.ppo_epochs; ++epoch) {
    for (const auto& part : SplitRows(shapes.rows(), config.num_minibatches)) {
      auto interrupted = Interrupted();
      if (!interrupted.ok()) return interrupted.status();
      if (*interrupted) {
        return absl::CancelledError(absl::StrCat("training stopped after ", stats.steps(),
                                                 " optimizer steps: the caller went away"));
      }
      double loss = 0;
      for (const MicroBatch& micro :
           SplitMicroBatches(part, shapes, config.max_tokens_per_microbatch)) {
        absl::StatusOr<torch::Tensor> share;
        stats.set_weight(micro.row_share);
        {
          model::AutocastGuard autocast(device, config.precision == Precision::kBf16Mixed);
          share = minibatch_loss(micro, stats);
        }
        stats.set_weight(1.0);
        if (!share.ok()) return share.status();
        // A micro-batch without response tokens has a loss without a graph: the step still
        // runs (zero gradient), so every data-parallel rank runs the same collectives.
        if (share->requires_grad()) share->backward();
        loss += share->detach().to(torch::kCPU, torch::kDouble).item<double>();
      }
      auto grad_norm = OptimizerStep(config);
      if (!grad_norm.ok()) return grad_norm.status();
      stats.Add(metric::kLoss, loss);
      stats.Add(metric::kGradNorm, *grad_norm);
      stats.CountStep();
    }
  }
  return stats.Finish();
}

std::vector<std::pair<std::string, torch::Tensor>> PolicyTrainer::NamedWeights(
    bool include_value_head) const {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& [name, param] : parameters_) {
    if (!include_value_head && name.rfind("v_head.", 0) == 0) continue;
    out.emplace_back(name, param.detach());
  }
  return out;
}

}  // namespace rlhf::train
