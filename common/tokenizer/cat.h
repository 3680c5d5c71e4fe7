#pragma once

// Debian's Abseil 20220623 is built with its own absl::string_view
// (ABSL_OPTION_USE_STD_STRING_VIEW 0), which does not convert from std::string_view.
// These bridge the two so this library can use std::string_view throughout.

#include <string>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace rlhf::tokenizer {

inline absl::string_view AbslView(std::string_view s) { return {s.data(), s.size()}; }

namespace cat_internal {
inline absl::string_view Bridge(std::string_view s) { return AbslView(s); }
template <typename T>
const T& Bridge(const T& value) {
  return value;
}
}  // namespace cat_internal

// absl::StrCat that also takes std::string_view arguments.
template <typename... Args>
std::string Cat(const Args&... args) {
  return absl::StrCat(cat_internal::Bridge(args)...);
}

}  // namespace rlhf::tokenizer
