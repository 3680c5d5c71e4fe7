#include "common/model/lora.h"

#include <cmath>
#include <map>
#include <set>

#include <ATen/CPUGeneratorImpl.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace rlhf::model {
namespace {

bool Matches(const std::string& name, const std::string& target) {
  return name == target || (name.size() > target.size() &&
                            name.compare(name.size() - target.size(), target.size(), target) == 0 &&
                            name[name.size() - target.size() - 1] == '.');
}

// Every dense layer that can carry an adapter, by module name.
std::vector<std::pair<std::string, LoraLayer*>> DenseLayers(torch::nn::Module& model) {
  std::vector<std::pair<std::string, LoraLayer*>> out;
  for (const auto& item : model.named_modules()) {
    if (auto* layer = dynamic_cast<LoraLayer*>(item.value().get())) {
      out.emplace_back(item.key(), layer);
    }
  }
  return out;
}

}  // namespace

double LoraOptions::Scale() const {
  return use_rslora ? alpha / std::sqrt(static_cast<double>(rank))
                    : alpha / static_cast<double>(rank);
}

absl::StatusOr<std::vector<std::string>> AttachLora(torch::nn::Module& model,
                                                    const LoraOptions& options) {
  if (options.rank < 1) return absl::InvalidArgumentError("lora rank must be >= 1");
  if (!(options.alpha > 0)) return absl::InvalidArgumentError("lora alpha must be > 0");
  if (!(options.dropout >= 0 && options.dropout < 1)) {
    return absl::InvalidArgumentError("lora dropout must be in [0, 1)");
  }
  if (options.target_modules.empty()) {
    return absl::InvalidArgumentError("lora target_modules must name at least one layer");
  }
  const auto layers = DenseLayers(model);
  std::vector<LoraLayer*> chosen;
  std::vector<std::string> names;
  for (const std::string& target : options.target_modules) {
    bool found = false;
    for (const auto& [name, layer] : layers) found |= Matches(name, target);
    if (!found) {
      std::set<std::string> kinds;  // the last name part of each dense layer
      for (const auto& [name, layer] : layers) kinds.insert(name.substr(name.rfind('.') + 1));
      return absl::InvalidArgumentError(absl::StrCat("lora target_modules: \"", target,
                                                     "\" matches no dense layer; this model has ",
                                                     absl::StrJoin(kinds, ", ")));
    }
  }
  for (const auto& [name, layer] : layers) {
    for (const std::string& target : options.target_modules) {
      if (Matches(name, target)) {
        chosen.push_back(layer);
        names.push_back(name);
        break;
      }
    }
  }
  auto generator = at::make_generator<at::CPUGeneratorImpl>(options.seed);
  for (LoraLayer* layer : chosen) {
    layer->AttachLora(options.rank, options.Scale(), options.dropout, generator);
  }
  return names;
}

std::vector<std::pair<std::string, LoraLayer*>> LoraLayers(torch::nn::Module& model) {
  std::vector<std::pair<std::string, LoraLayer*>> out;
  for (const auto& [name, layer] : DenseLayers(model)) {
    if (layer->has_lora()) out.emplace_back(name, layer);
  }
  return out;
}

std::vector<std::pair<std::string, torch::Tensor>> MergeLoraWeights(
    torch::nn::Module& model, std::vector<std::pair<std::string, torch::Tensor>> named_weights) {
  std::map<std::string, LoraLayer*> by_weight;
  for (const auto& [name, layer] : LoraLayers(model)) by_weight[name + ".weight"] = layer;
  torch::NoGradGuard no_grad;
  for (auto& [name, weight] : named_weights) {
    auto it = by_weight.find(name);
    if (it != by_weight.end()) weight = weight + it->second->LoraDeltaWeight().to(weight.device());
  }
  return named_weights;
}

}  // namespace rlhf::model
