#include "common/train/data_parallel_group.h"

// The c10d classes come from the torch wheel's libtorch_cpu; ProcessGroupGloo.hpp also
// needs gloo's headers, which the wheel does not ship: they come from Debian's
// libgloo-dev (scripts/install_deps.sh). Only pointers to gloo types cross that line.
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <cstring>
#include <optional>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/status/torch_status.h"
#include "common/train/listen_socket.h"
#include "common/train/nccl_backend.h"

namespace rlhf::train {
namespace {

// Store keys. "generation": the newest generation of the group rank 0 asked for;
// "formed/G": generation G is complete; "rejoin": a counter ranks bump to ask for a new
// generation; "cmd/G/N": rank 0's N-th command in generation G.
constexpr char kGenerationKey[] = "generation";
constexpr char kRejoinKey[] = "rejoin";
constexpr auto kCommandPoll = std::chrono::milliseconds(5);

std::string FormedKey(int64_t generation) { return absl::StrCat("formed/", generation); }
std::string CommandKey(int64_t generation, int64_t n) {
  return absl::StrCat("cmd/", generation, "/", n);
}
std::vector<uint8_t> Bytes(const std::string& s) { return {s.begin(), s.end()}; }

}  // namespace

struct DataParallelGroup::Impl {
  DataParallelOptions options;
  c10::intrusive_ptr<c10d::TCPStore> store;
  c10::intrusive_ptr<c10d::Backend> group;  // Gloo, or NCCL for CUDA ranks

  // Runs `op` on `tensors` where the backend wants them (NCCL: on the device), leaving
  // the results in `tensors`.
  void Run(std::vector<torch::Tensor>& tensors,
           const std::function<c10::intrusive_ptr<c10d::Work>(std::vector<torch::Tensor>&)>& op) {
    const bool move = options.device.is_cuda();
    std::vector<torch::Tensor> placed;
    for (const torch::Tensor& t : tensors) {
      placed.push_back(move && t.device() != options.device ? t.to(options.device) : t);
    }
    op(placed)->wait();
    for (size_t i = 0; i < tensors.size(); ++i) {
      if (!placed[i].is_same(tensors[i])) tensors[i].copy_(placed[i]);
    }
  }

  int64_t StoredGeneration() {
    const std::vector<uint8_t> value = store->get(kGenerationKey);
    int64_t generation = -1;
    if (!absl::SimpleAtoi(std::string(value.begin(), value.end()), &generation)) {
      throw std::runtime_error("the group store's generation is not a number");
    }
    return generation;
  }
};

DataParallelGroup::DataParallelGroup(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)), rank_(impl_->options.rank), world_size_(impl_->options.world_size) {}

DataParallelGroup::~DataParallelGroup() = default;

absl::Status DataParallelGroup::Form(int64_t generation) {
  return CatchTorchErrors("forming the data-parallel group", [&]() -> absl::Status {
    impl_->group.reset();  // closes the old generation's connections: its waiters fail
    auto prefixed =
        c10::make_intrusive<c10d::PrefixStore>(absl::StrCat("g", generation, "/"), impl_->store);
    if (impl_->options.device.is_cuda()) {
      auto nccl = MakeNcclBackend(prefixed, static_cast<int>(rank_), static_cast<int>(world_size_),
                                  impl_->options.timeout);
      if (!nccl.ok()) return nccl.status();
      impl_->group = *nccl;
    } else {
      auto gloo_options = c10d::ProcessGroupGloo::Options::create(impl_->options.timeout);
      gloo_options->devices.push_back(
          impl_->options.gloo_host.empty()
              ? c10d::ProcessGroupGloo::createDefaultDevice()
              : c10d::ProcessGroupGloo::createDeviceForHostname(impl_->options.gloo_host));
      impl_->group = c10::make_intrusive<c10d::ProcessGroupGloo>(
          prefixed, static_cast<int>(rank_), static_cast<int>(world_size_), gloo_options);
    }
    generation_ = generation;
    next_command_ = 0;
    broken_ = false;
    if (rank_ == 0) impl_->store->set(FormedKey(generation), Bytes("1"));
    return absl::OkStatus();
  });
}

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
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  // Rank 0's store listens on store_host only, not on every interface.
  std::optional<int> listen_fd;
  if (options.rank == 0) {
    auto fd = ListenOn(options.store_host, options.store_port);
    if (!fd.ok()) return fd.status();
    listen_fd = *fd;
  }
  absl::Status connected = CatchTorchErrors("joining the data-parallel group", [&] {
    c10d::TCPStoreOptions store_options;
    store_options.masterListenFd = listen_fd;
    store_options.port = static_cast<uint16_t>(options.store_port);
    store_options.isServer = options.rank == 0;
    store_options.numWorkers = options.world_size;
    store_options.waitWorkers = false;
    store_options.timeout = options.timeout;
    impl->store = c10::make_intrusive<c10d::TCPStore>(options.store_host, store_options);
    if (options.rank == 0) impl->store->set(kGenerationKey, Bytes("0"));
    return absl::OkStatus();
  });
  std::shared_ptr<DataParallelGroup> group(new DataParallelGroup(std::move(impl)));
  absl::Status formed = connected;
  if (formed.ok()) {
    group->store_port_ = group->impl_->store->getPort();
    if (options.rank == 0) {
      formed = group->Form(0);
    } else {
      // Generation 0 is the group rank 0 forms at its start; a later one means rank 0 is
      // re-forming (this rank was lost and restarted): join it, and get the training state
      // from rank 0's next command. A generation already complete was formed without this
      // rank: ask rank 0 for a new one (NextCommand does the asking and the joining).
      formed = CatchTorchErrors("joining the data-parallel group", [&] {
        const int64_t generation = group->impl_->StoredGeneration();
        const bool complete = group->impl_->store->check({FormedKey(generation)});
        group->joined_late_ = generation > 0 || complete;
        group->generation_ = generation;
        group->broken_ = complete;
        return complete ? absl::OkStatus() : group->Form(generation);
      });
    }
  }
  if (!formed.ok()) {
    return absl::UnavailableError(absl::StrCat(formed.message(), " (store ", options.store_host,
                                               ":", options.store_port, ", rank ", options.rank,
                                               ")"));
  }
  return group;
}

absl::StatusOr<bool> DataParallelGroup::NeedsReform() {
  if (world_size_ == 1) return false;
  if (broken_) return true;
  absl::StatusOr<int64_t> requests = CatchTorchErrors(
      "reading the group store",
      [&]() -> absl::StatusOr<int64_t> { return impl_->store->add(kRejoinKey, 0); });
  if (!requests.ok()) return absl::UnavailableError(requests.status().message());
  return *requests > rejoin_requests_seen_;
}

absl::Status DataParallelGroup::Reform() {
  absl::Status formed = CatchTorchErrors("re-forming the data-parallel group", [&] {
    rejoin_requests_seen_ = impl_->store->add(kRejoinKey, 0);
    const int64_t next = generation_ + 1;
    generation_ = next;  // a failed attempt's store prefix is never reused
    impl_->store->set(kGenerationKey, Bytes(absl::StrCat(next)));
    return Form(next);
  });
  if (!formed.ok()) {
    broken_ = true;
    return absl::UnavailableError(absl::StrCat(
        "the data-parallel actor group lost a rank and not every rank rejoined within ",
        std::chrono::duration_cast<std::chrono::seconds>(impl_->options.timeout).count(),
        " s: ", formed.message()));
  }
  return absl::OkStatus();
}

absl::Status DataParallelGroup::PublishCommand(const std::string& bytes) {
  return CatchTorchErrors("publishing a command to the group", [&] {
    impl_->store->set(CommandKey(generation_, next_command_), Bytes(bytes));
    // Every command ends in a collective, so every follower has read the previous one.
    if (next_command_ > 0) impl_->store->deleteKey(CommandKey(generation_, next_command_ - 1));
    ++next_command_;
    return absl::OkStatus();
  });
}

absl::StatusOr<std::string> DataParallelGroup::NextCommand() {
  absl::StatusOr<std::string> command =
      CatchTorchErrors("waiting for rank 0's next command", [&]() -> absl::StatusOr<std::string> {
        bool asked = false;
        while (true) {
          if (broken_ && !asked) {
            impl_->store->add(kRejoinKey, 1);  // rank 0 re-forms before its next command
            asked = true;
          }
          const int64_t newest = impl_->StoredGeneration();
          if (newest > generation_) {
            if (!Form(newest).ok()) {  // not every rank came: wait for the next attempt
              generation_ = newest;
              broken_ = true;
              asked = false;
            }
            continue;
          }
          const std::string key = CommandKey(generation_, next_command_);
          if (!broken_ && impl_->store->check({key})) {
            const std::vector<uint8_t> value = impl_->store->get(key);
            ++next_command_;
            return std::string(value.begin(), value.end());
          }
          std::this_thread::sleep_for(kCommandPoll);
        }
      });
  if (!command.ok()) return absl::UnavailableError(command.status().message());
  return command;
}

absl::Status DataParallelGroup::Collective(const char* what, const std::function<void()>& run) {
  // Aborted, not Unavailable: the call that ran this may have done part of its work, so
  // it must not be retried as is (gRPC retries UNAVAILABLE); the caller restores state.
  if (broken_) {
    return absl::AbortedError(
        absl::StrCat("the data-parallel actor group lost a rank; it re-forms before the next "
                     "command (",
                     what, ")"));
  }
  absl::Status status = CatchTorchErrors(what, [&] {
    run();
    return absl::OkStatus();
  });
  if (status.ok()) return status;
  broken_ = true;
  return absl::AbortedError(absl::StrCat("data-parallel actor group: ", status.message(),
                                         " (a rank was lost; the group re-forms when it "
                                         "rejoins)"));
}

absl::Status DataParallelGroup::AllReduceSum(torch::Tensor& tensor) {
  if (world_size_ == 1) return absl::OkStatus();
  return Collective("all-reduce", [&] {
    std::vector<torch::Tensor> tensors = {tensor};
    impl_->Run(tensors, [&](auto& t) { return impl_->group->allreduce(t); });
  });
}

absl::Status DataParallelGroup::AllReduceMean(std::vector<torch::Tensor>& gradients) {
  if (world_size_ == 1 || gradients.empty()) return absl::OkStatus();
  return Collective("gradient all-reduce", [&] {
    // Buckets of about bucket_bytes, each one flat fp32 buffer and one collective (DDP's
    // gradient buckets): the extra memory is two buckets, not a copy of every gradient.
    // Bucket k + 1 is packed while bucket k's all-reduce runs.
    struct Bucket {
      std::vector<torch::Tensor> buffer;  // one flat tensor, on the backend's device
      size_t first = 0, end = 0;          // gradients[first, end)
      c10::intrusive_ptr<c10d::Work> work;
    };
    auto finish = [&](Bucket& bucket) {
      bucket.work->wait();
      torch::Tensor flat = bucket.buffer[0].div_(static_cast<double>(world_size_));
      int64_t offset = 0;
      for (size_t i = bucket.first; i < bucket.end; ++i) {
        const int64_t n = gradients[i].numel();
        gradients[i].copy_(flat.narrow(0, offset, n).view_as(gradients[i]));
        offset += n;
      }
    };
    const int64_t bucket_elements = std::max<int64_t>(1, impl_->options.bucket_bytes / 4);
    std::optional<Bucket> pending;
    size_t next = 0;
    while (next < gradients.size()) {
      Bucket bucket;
      bucket.first = next;
      int64_t elements = 0;
      std::vector<torch::Tensor> flat;
      while (next < gradients.size() &&
             (flat.empty() || elements + gradients[next].numel() <= bucket_elements)) {
        elements += gradients[next].numel();
        flat.push_back(gradients[next].reshape(-1).to(impl_->options.device, torch::kFloat32));
        ++next;
      }
      bucket.end = next;
      bucket.buffer = {torch::cat(flat)};
      bucket.work = impl_->group->allreduce(bucket.buffer);
      if (pending) finish(*pending);
      pending = std::move(bucket);
    }
    finish(*pending);
  });
}

absl::Status DataParallelGroup::Broadcast(std::string* bytes) {
  if (world_size_ == 1) return absl::OkStatus();
  return Collective("broadcast", [&] {
    std::vector<torch::Tensor> size = {
        torch::tensor({static_cast<int64_t>(rank_ == 0 ? bytes->size() : 0)}, torch::kInt64)};
    impl_->Run(size, [&](auto& t) { return impl_->group->broadcast(t); });
    const int64_t n = size[0].item<int64_t>();
    std::vector<torch::Tensor> data = {torch::empty({n}, torch::kUInt8)};
    if (rank_ == 0) std::memcpy(data[0].data_ptr(), bytes->data(), n);
    if (n > 0) impl_->Run(data, [&](auto& t) { return impl_->group->broadcast(t); });
    if (rank_ != 0) bytes->assign(static_cast<const char*>(data[0].data_ptr()), n);
  });
}

absl::Status DataParallelGroup::BroadcastTensors(std::vector<torch::Tensor>& tensors) {
  if (world_size_ == 1) return absl::OkStatus();
  return Collective("broadcast", [&] {
    torch::NoGradGuard no_grad;
    for (torch::Tensor& t : tensors) {
      std::vector<torch::Tensor> one = {t.is_contiguous() ? t : t.contiguous()};
      impl_->Run(one, [&](auto& x) { return impl_->group->broadcast(x); });
      if (!one[0].is_same(t)) t.copy_(one[0]);
    }
  });
}

}  // namespace rlhf::train
