#pragma once

// absl::Status plumbing shared by every area (torch-free): early returns and context.
//
//   RLHF_RETURN_IF_ERROR(store.Put(job));
//   RLHF_ASSIGN_OR_RETURN(auto spec, LoadJobSpecFile(path));
//   return WithContext(status, "iteration 3");   // "iteration 3: <message>", same code

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace rlhf {

// `status` with "context: " before its message; OK stays OK.
inline absl::Status WithContext(const absl::Status& status, absl::string_view context) {
  if (status.ok()) return status;
  return absl::Status(status.code(), absl::StrCat(context, ": ", status.message()));
}

}  // namespace rlhf

#define RLHF_STATUS_CONCAT_INNER(a, b) a##b
#define RLHF_STATUS_CONCAT(a, b) RLHF_STATUS_CONCAT_INNER(a, b)

// Returns the error of `expr` (an absl::Status) from the enclosing function.
#define RLHF_RETURN_IF_ERROR(expr)                                  \
  do {                                                              \
    if (::absl::Status rlhf_status_ = (expr); !rlhf_status_.ok()) { \
      return rlhf_status_;                                          \
    }                                                               \
  } while (0)

// `lhs` = the value of `expr` (an absl::StatusOr<T>), or return its error.
#define RLHF_ASSIGN_OR_RETURN(lhs, expr) \
  RLHF_ASSIGN_OR_RETURN_IMPL(RLHF_STATUS_CONCAT(rlhf_statusor_, __LINE__), lhs, expr)
#define RLHF_ASSIGN_OR_RETURN_IMPL(statusor, lhs, expr) \
  auto statusor = (expr);                               \
  if (!statusor.ok()) return statusor.status();         \
  lhs = std::move(*statusor)
