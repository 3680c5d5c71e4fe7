#pragma once

// LibTorch reports errors by throwing c10::Error; this project's public boundaries return
// absl::Status. These helpers are the one place where the two meet (STYLE.md: "LibTorch
// throws c10::Error; catch it ... and turn it into a Status").

#include <exception>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include <c10/util/Exception.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

namespace rlhf::model {

// The first line of a c10::Error message, without LibTorch's C++ backtrace.
inline std::string TorchErrorMessage(const c10::Error& e) {
  std::string message = e.what_without_backtrace();
  constexpr size_t kMaxChars = 1024;  // keep log lines and RPC statuses readable
  if (message.size() > kMaxChars) message.resize(kMaxChars);
  return message;
}

// Runs `fn` (returning absl::Status or absl::StatusOr<T>) and converts any exception it
// throws into an error status prefixed with `context`. Index/value errors from torch are
// the caller's bad input (InvalidArgument); anything else is Internal.
template <typename Fn>
auto CatchTorchErrors(std::string_view context, Fn&& fn) -> std::invoke_result_t<Fn> {
  // This Abseil predates absl::string_view == std::string_view, so StrCat takes a copy.
  const std::string where(context);
  try {
    return std::forward<Fn>(fn)();
  } catch (const c10::IndexError& e) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": ", TorchErrorMessage(e)));
  } catch (const c10::ValueError& e) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": ", TorchErrorMessage(e)));
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat(where, ": ", TorchErrorMessage(e)));
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(absl::StrCat(where, ": out of memory"));
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat(where, ": ", e.what()));
  }
}

}  // namespace rlhf::model
