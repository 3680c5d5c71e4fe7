#include "common/train/data_parallel_group.h"

// The c10d classes come from the torch wheel's libtorch_cpu; ProcessGroupGloo.hpp also
// needs gloo's headers, which the wheel does not ship: they come from Debian's
// libgloo-dev (scripts/install_deps.sh). Only pointers to gloo types cross that line.
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/status/torch_status.h"

namespace rlhf::train {

struct DataParallelGroup::Impl {
  c10::intrusive_ptr<c10d::TCPStore> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> group;
};

DataParallelGroup::DataParallelGroup(std::unique_ptr<Impl> impl, int64_t rank, int64_t world_size,
                                     int64_t store_port)
    : impl_(std::move(impl)), rank_(rank), world_size_(world_size), store_port_(store_port) {}

DataParallelGroup::~DataParallelGroup() = default;

absl::StatusOr<std::shared_ptr<DataParallelGroup>> DataParallelGroup::Join(
    const DataParallelOptions& options) {
  if (options.world_size < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("world size must be >= 1, got ", options.world_size));
  }
  if (options.rank < 0 || options.rank >= options.world_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("rank ", options.rank, " is outside [0, ", options.world_size, ")"));
  }
  if (options.store_port < 0 || options.store_port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("bad store port ", options.store_port));
  }
  absl::StatusOr<std::shared_ptr<DataParallelGroup>> joined = CatchTorchErrors(
      "joining the data-parallel group",
      [&]() -> absl::StatusOr<std::shared_ptr<DataParallelGroup>> {
        auto impl = std::make_unique<Impl>();
        c10d::TCPStoreOptions store_options;
        store_options.port = static_cast<uint16_t>(options.store_port);
        store_options.isServer = options.rank == 0;
        store_options.numWorkers = options.world_size;
        store_options.waitWorkers = false;
        store_options.timeout = options.timeout;
        impl->store = c10::make_intrusive<c10d::TCPStore>(options.store_host, store_options);
        auto gloo_options = c10d::ProcessGroupGloo::Options::create(options.timeout);
        gloo_options->devices.push_back(
            options.gloo_host.empty()
                ? c10d::ProcessGroupGloo::createDefaultDevice()
                : c10d::ProcessGroupGloo::createDeviceForHostname(options.gloo_host));
        impl->group = c10::make_intrusive<c10d::ProcessGroupGloo>(
            impl->store, static_cast<int>(options.rank), static_cast<int>(options.world_size),
            gloo_options);
        const int64_t port = impl->store->getPort();
        return std::shared_ptr<DataParallelGroup>(
            new DataParallelGroup(std::move(impl), options.rank, options.world_size, port));
      });
  if (!joined.ok() && joined.status().code() == absl::StatusCode::kInternal) {
    return absl::UnavailableError(absl::StrCat(joined.status().message(), " (store ",
                                               options.store_host, ":", options.store_port,
                                               ", rank ", options.rank, ")"));
  }
  return joined;
}

absl::Status DataParallelGroup::AllReduceSum(torch::Tensor& tensor) {
  if (world_size_ == 1) return absl::OkStatus();
  return CatchTorchErrors("all-reduce", [&]() -> absl::Status {
    std::vector<torch::Tensor> tensors = {tensor};
    impl_->group->allreduce(tensors)->wait();
    return absl::OkStatus();
  });
}

absl::Status DataParallelGroup::AllReduceMean(std::vector<torch::Tensor>& gradients) {
  if (world_size_ == 1 || gradients.empty()) return absl::OkStatus();
  return CatchTorchErrors("gradient all-reduce", [&]() -> absl::Status {
    // One flat fp32 buffer: one collective per step instead of one per parameter.
    std::vector<torch::Tensor> flat;
    flat.reserve(gradients.size());
    for (const torch::Tensor& g : gradients) flat.push_back(g.reshape(-1).to(torch::kFloat32));
    std::vector<torch::Tensor> buffer = {torch::cat(flat)};
    impl_->group->allreduce(buffer)->wait();
    buffer[0].div_(static_cast<double>(world_size_));
    int64_t offset = 0;
    for (torch::Tensor& g : gradients) {
      const int64_t n = g.numel();
      g.copy_(buffer[0].narrow(0, offset, n).view_as(g));
      offset += n;
    }
    return absl::OkStatus();
  });
}

absl::Status DataParallelGroup::Broadcast(std::string* bytes) {
  if (world_size_ == 1) return absl::OkStatus();
  return CatchTorchErrors("broadcast", [&]() -> absl::Status {
    std::vector<torch::Tensor> size = {
        torch::tensor({static_cast<int64_t>(rank_ == 0 ? bytes->size() : 0)}, torch::kInt64)};
    impl_->group->broadcast(size)->wait();
    const int64_t n = size[0].item<int64_t>();
    std::vector<torch::Tensor> data = {torch::empty({n}, torch::kUInt8)};
    if (rank_ == 0) std::memcpy(data[0].data_ptr(), bytes->data(), n);
    if (n > 0) impl_->group->broadcast(data)->wait();
    if (rank_ != 0) bytes->assign(static_cast<const char*>(data[0].data_ptr()), n);
    return absl::OkStatus();
  });
}

absl::Status DataParallelGroup::BroadcastTensors(std::vector<torch::Tensor>& tensors) {
  if (world_size_ == 1) return absl::OkStatus();
  return CatchTorchErrors("broadcast", [&]() -> absl::Status {
    torch::NoGradGuard no_grad;
    for (torch::Tensor& t : tensors) {
      std::vector<torch::Tensor> one = {t.is_contiguous() ? t : t.contiguous()};
      impl_->group->broadcast(one)->wait();
      if (!one[0].is_same(t)) t.copy_(one[0]);
    }
    return absl::OkStatus();
  });
}

}  // namespace rlhf::train
