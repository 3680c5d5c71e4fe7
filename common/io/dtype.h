#pragma once

#include <array>
#include <cstddef>
#include <ostream>
#include <string_view>

#include "absl/status/statusor.h"

namespace rlhf::io {

// Element types a safetensors file may hold that this project reads and writes. The names
// are the ones the safetensors format uses ("F32", "BF16", "BOOL", ...). The format's
// other types (U16..U64, F8_*) are refused by name rather than misread.
enum class DType { kF64, kF32, kF16, kBF16, kI64, kI32, kI16, kI8, kU8, kBool };

inline constexpr std::array<DType, 10> kAllDTypes = {
    DType::kF64, DType::kF32, DType::kF16, DType::kBF16, DType::kI64,
    DType::kI32, DType::kI16, DType::kI8,  DType::kU8,   DType::kBool};

// Bytes per element (BOOL is one byte, as in safetensors and torch).
size_t DTypeSize(DType dtype);

// The safetensors name, e.g. "BF16".
std::string_view DTypeName(DType dtype);

// Inverse of DTypeName; exact, case-sensitive match as in the format. InvalidArgument for
// any other string, naming it and the supported set.
absl::StatusOr<DType> ParseDType(std::string_view name);

std::ostream& operator<<(std::ostream& os, DType dtype);

}  // namespace rlhf::io
