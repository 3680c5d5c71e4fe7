#include "common/io/confined_path.h"

#include <algorithm>
#include <system_error>

#include "absl/strings/str_cat.h"

namespace rlhf::io {
namespace fs = std::filesystem;
namespace {

fs::path Canonical(const fs::path& path) {
  std::error_code ec;
  fs::path resolved = fs::weakly_canonical(fs::absolute(path, ec), ec);
  return ec ? fs::absolute(path).lexically_normal() : resolved;
}

}  // namespace

bool IsUnder(const fs::path& root, const fs::path& path) {
  const fs::path r = Canonical(root), p = Canonical(path);
  // Component-wise, so /data-other is not under /data; a trailing "" (from "dir/") is
  // not a component that must match.
  auto root_end = r.end();
  if (r.has_filename() == false && root_end != r.begin()) --root_end;
  return std::mismatch(r.begin(), root_end, p.begin(), p.end()).first == root_end;
}

absl::StatusOr<fs::path> ResolveUnder(const fs::path& root, const std::string& path,
                                      const std::string& field) {
  if (path.empty()) return absl::InvalidArgumentError(absl::StrCat(field, ": empty path"));
  if (root.empty()) return Canonical(path);
  const fs::path candidate = fs::path(path).is_absolute() ? fs::path(path) : Canonical(root) / path;
  if (!IsUnder(root, candidate)) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": ", path, " is outside ", Canonical(root).string()));
  }
  return Canonical(candidate);
}

}  // namespace rlhf::io
