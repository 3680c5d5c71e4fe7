#pragma once
// A checkpoint directory's manifest: MANIFEST.json, written last, lists every other file
// under the directory with its size and SHA-256. A checkpoint verifies when every listed
// file is there with that size and digest: a truncated, overwritten or missing file is
// found before anything loads it, not as NaN gradients later.

#include <filesystem>

#include "absl/status/status.h"

namespace rlhf::io {

inline constexpr char kManifestFile[] = "MANIFEST.json";

// Hashes every regular file under `dir` (recursively, MANIFEST.json aside) and writes
// MANIFEST.json atomically (fsynced). Errors name the file.
absl::Status WriteCheckpointManifest(const std::filesystem::path& dir);

// NotFound when `dir` has no MANIFEST.json (written before manifests existed); DataLoss
// naming the first file that is missing, has another size or another digest, or a
// manifest that does not parse.
absl::Status VerifyCheckpointManifest(const std::filesystem::path& dir);

}  // namespace rlhf::io
