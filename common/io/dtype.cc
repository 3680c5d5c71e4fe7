#include "common/io/dtype.h"

#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/io/json_util.h"

namespace rlhf::io {
namespace {

struct DTypeInfo {
  DType dtype;
  std::string_view name;
  size_t size;
};

// Indexed by the enum's value; the static_assert below keeps the two in step.
constexpr std::array<DTypeInfo, kAllDTypes.size()> kDTypeInfo = {{
    {DType::kF64, "F64", 8},
    {DType::kF32, "F32", 4},
    {DType::kF16, "F16", 2},
    {DType::kBF16, "BF16", 2},
    {DType::kI64, "I64", 8},
    {DType::kI32, "I32", 4},
    {DType::kI16, "I16", 2},
    {DType::kI8, "I8", 1},
    {DType::kU8, "U8", 1},
    {DType::kBool, "BOOL", 1},
}};

constexpr bool InfoMatchesEnum() {
  for (size_t i = 0; i < kDTypeInfo.size(); ++i) {
    if (static_cast<size_t>(kDTypeInfo[i].dtype) != i || kAllDTypes[i] != kDTypeInfo[i].dtype) {
      return false;
    }
  }
  return true;
}
static_assert(InfoMatchesEnum(), "kDTypeInfo must list DType values in declaration order");

const DTypeInfo& Info(DType dtype) { return kDTypeInfo[static_cast<size_t>(dtype)]; }

}  // namespace

size_t DTypeSize(DType dtype) { return Info(dtype).size; }

std::string_view DTypeName(DType dtype) { return Info(dtype).name; }

absl::StatusOr<DType> ParseDType(std::string_view name) {
  for (const DTypeInfo& info : kDTypeInfo) {
    if (info.name == name) return info.dtype;
  }
  std::string supported = absl::StrJoin(kDTypeInfo, ", ", [](std::string* out, const DTypeInfo& i) {
    absl::StrAppend(out, internal::ToAbsl(i.name));
  });
  return absl::InvalidArgumentError(
      absl::StrCat("unknown dtype ", internal::Quote(name), " (supported: ", supported, ")"));
}

std::ostream& operator<<(std::ostream& os, DType dtype) { return os << DTypeName(dtype); }

}  // namespace rlhf::io
