#pragma once

// The one place where exceptions become absl::Status (STYLE.md: "LibTorch throws
// c10::Error; catch it ... and turn it into a Status"; nothing throws across a gRPC
// boundary). Every library entry point that calls LibTorch, the RPC executor and the
// streaming reactors run their work under CatchTorchErrors.
//
//   c10::IndexError, ValueError, TypeError  -> INVALID_ARGUMENT (the caller's bad input)
//   c10::OutOfMemoryError, std::bad_alloc   -> RESOURCE_EXHAUSTED (send a smaller batch)
//   any other c10::Error or std::exception  -> INTERNAL
//   anything else thrown                    -> INTERNAL

#include <exception>
#include <new>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include <c10/util/Exception.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

namespace rlhf {

// The first line of a c10::Error message, without LibTorch's C++ backtrace.
inline std::string TorchErrorMessage(const c10::Error& e) {
  std::string message = e.what_without_backtrace();
  constexpr size_t kMaxChars = 1024;  // keep log lines and RPC statuses readable
  if (message.size() > kMaxChars) message.resize(kMaxChars);
  return message;
}

// The status for the exception being handled; call only inside a catch block.
inline absl::Status StatusFromCurrentException(std::string_view context) {
  // This Abseil predates absl::string_view == std::string_view, so StrCat takes a copy.
  const std::string where(context);
  try {
    throw;
  } catch (const c10::OutOfMemoryError& e) {
    return absl::ResourceExhaustedError(
        absl::StrCat(where, ": out of memory (", TorchErrorMessage(e), ")"));
  } catch (const c10::IndexError& e) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": ", TorchErrorMessage(e)));
  } catch (const c10::ValueError& e) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": ", TorchErrorMessage(e)));
  } catch (const c10::TypeError& e) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": ", TorchErrorMessage(e)));
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat(where, ": ", TorchErrorMessage(e)));
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(absl::StrCat(where, ": out of memory"));
  } catch (const std::exception& e) {
    std::string message = e.what();
    if (message.size() > 1024) message.resize(1024);
    return absl::InternalError(absl::StrCat(where, ": ", message));
  } catch (...) {
    return absl::InternalError(absl::StrCat(where, ": unknown exception"));
  }
}

// Runs `fn` (returning absl::Status or absl::StatusOr<T>) and converts anything it throws
// into an error status prefixed with `context`.
template <typename Fn>
auto CatchTorchErrors(std::string_view context, Fn&& fn) -> std::invoke_result_t<Fn> {
  try {
    return std::forward<Fn>(fn)();
  } catch (...) {
    return StatusFromCurrentException(context);
  }
}

}  // namespace rlhf
