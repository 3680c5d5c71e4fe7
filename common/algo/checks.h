#pragma once

// Argument validation and c10::Error -> absl::Status conversion shared by the public entry
// points of common/algo. Every public function validates shapes up front (a clear
// InvalidArgument naming the argument) and runs its math under RunGuarded, so nothing
// LibTorch throws crosses the library boundary (STYLE.md: absl::Status inside).

#include <exception>
#include <initializer_list>
#include <new>
#include <string>
#include <utility>

#include <torch/torch.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/status/torch_status.h"

namespace rlhf::algo {

// "[4, 7]" for error messages.
inline std::string ShapeString(const torch::Tensor& t) {
  if (!t.defined()) return "undefined";
  std::string s = "[";
  for (int64_t i = 0; i < t.dim(); ++i) absl::StrAppend(&s, i ? ", " : "", t.size(i));
  return s + "]";
}

// `t` must be defined, floating point and of rank `rank`.
inline absl::Status CheckFloat(absl::string_view fn, absl::string_view name, const torch::Tensor& t,
                               int64_t rank) {
  if (!t.defined()) return absl::InvalidArgumentError(absl::StrCat(fn, ": ", name, " is missing"));
  if (!t.is_floating_point()) {
    return absl::InvalidArgumentError(absl::StrCat(fn, ": ", name, " must be floating point, got ",
                                                   std::string(c10::toString(t.scalar_type()))));
  }
  if (t.dim() != rank) {
    return absl::InvalidArgumentError(
        absl::StrCat(fn, ": ", name, " must have rank ", rank, ", got shape ", ShapeString(t)));
  }
  return absl::OkStatus();
}

// `t` must be defined (any dtype) and have exactly the shape of `like`.
inline absl::Status CheckSameShape(absl::string_view fn, absl::string_view name,
                                   const torch::Tensor& t, absl::string_view like_name,
                                   const torch::Tensor& like) {
  if (!t.defined()) return absl::InvalidArgumentError(absl::StrCat(fn, ": ", name, " is missing"));
  if (t.sizes() != like.sizes()) {
    return absl::InvalidArgumentError(absl::StrCat(fn, ": ", name, " has shape ", ShapeString(t),
                                                   " but ", like_name, " has ", ShapeString(like)));
  }
  return absl::OkStatus();
}

// A mask: bool, or floating point weights (0 = ignored), with the shape of `like`.
inline absl::Status CheckMask(absl::string_view fn, const torch::Tensor& mask,
                              absl::string_view like_name, const torch::Tensor& like) {
  if (auto s = CheckSameShape(fn, "mask", mask, like_name, like); !s.ok()) return s;
  if (mask.scalar_type() != torch::kBool && !mask.is_floating_point() &&
      mask.scalar_type() != torch::kLong && mask.scalar_type() != torch::kInt) {
    return absl::InvalidArgumentError(absl::StrCat(fn, ": mask must be bool, integer or float"));
  }
  return absl::OkStatus();
}

// First non-OK status of a list of checks.
inline absl::Status FirstError(std::initializer_list<absl::Status> statuses) {
  for (const auto& s : statuses) {
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

// Runs `fn` under the project's one exception-to-Status mapping (common/status).
template <typename Fn>
auto RunGuarded(absl::string_view context, Fn&& fn) -> decltype(fn()) {
  return CatchTorchErrors(std::string_view(context.data(), context.size()), std::forward<Fn>(fn));
}

}  // namespace rlhf::algo
