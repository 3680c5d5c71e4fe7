#include "services/local/in_process_weight_sync.h"

#include "common/rpc/tensor_codec.h"

namespace rlhf::coordinator {

absl::StatusOr<InProcessSync> SyncWeightsInProcess(actor::ActorCore& actor,
                                                   rollout::RolloutCore& rollout,
                                                   v1::DataType wire_dtype, bool share) {
  absl::StatusOr<torch::ScalarType> wire = torch::kFloat32;
  if (wire_dtype != v1::DATA_TYPE_UNSPECIFIED) wire = rpc::TorchDtype(wire_dtype);
  if (!wire.ok()) return wire.status();
  const int64_t element_bytes = static_cast<int64_t>(c10::elementSize(*wire));
  InProcessSync out;
  absl::StatusOr<int64_t> served = absl::InternalError("weight sync: the actor did not visit");
  absl::Status visited = actor.VisitWeights(
      /*include_value_head=*/false,
      [&](int64_t version, const std::vector<std::pair<std::string, torch::Tensor>>& weights) {
        rollout::AssembledWeights assembled;  // the actor's own tensors: no copy yet
        assembled.version = version;
        for (const auto& [name, tensor] : weights) {
          assembled.tensors.emplace(name, tensor);
          assembled.bytes += tensor.numel() * element_bytes;
        }
        out.stats.tensors = static_cast<int64_t>(weights.size());
        out.stats.bytes = assembled.bytes;
        // Under the actor's lock: nothing trains while the rollout installs them.
        served = share ? rollout.ShareWeights(assembled) : rollout.SwapWeights(assembled);
        return served.status();
      });
  if (!visited.ok()) return visited;
  out.stats.version = *served;
  auto held = rpc::WireDtype(rollout.dtype());
  out.held = held.ok() ? *held : v1::DATA_TYPE_UNSPECIFIED;
  return out;
}

}  // namespace rlhf::coordinator
