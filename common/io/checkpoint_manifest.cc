#include "common/io/checkpoint_manifest.h"

#include <openssl/evp.h>

#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "common/io/atomic_file.h"

namespace rlhf::io {
namespace fs = std::filesystem;
namespace {

struct FileFacts {
  uint64_t size = 0;
  std::string sha256;  // lowercase hex
};

absl::StatusOr<FileFacts> Hash(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::DataLossError(absl::StrCat(path.string(), ": cannot open"));
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (ctx == nullptr || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) {
    return absl::InternalError("SHA-256 is unavailable (OpenSSL)");
  }
  FileFacts facts;
  std::vector<char> buffer(size_t{1} << 20);
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    const std::streamsize got = in.gcount();
    if (got <= 0) break;
    facts.size += static_cast<uint64_t>(got);
    EVP_DigestUpdate(ctx.get(), buffer.data(), static_cast<size_t>(got));
  }
  if (in.bad()) return absl::DataLossError(absl::StrCat(path.string(), ": read error"));
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_DigestFinal_ex(ctx.get(), digest, &length);
  static constexpr char kHex[] = "0123456789abcdef";
  for (unsigned int i = 0; i < length; ++i) {
    facts.sha256 += kHex[digest[i] >> 4];
    facts.sha256 += kHex[digest[i] & 15];
  }
  return facts;
}

}  // namespace

absl::Status WriteCheckpointManifest(const fs::path& dir) {
  std::map<std::string, FileFacts> files;  // sorted: the manifest is deterministic
  std::error_code error;
  for (fs::recursive_directory_iterator it(dir, error), end; !error && it != end;
       it.increment(error)) {
    if (!it->is_regular_file() || it->path().filename() == kManifestFile) continue;
    auto facts = Hash(it->path());
    if (!facts.ok()) return facts.status();
    files[fs::relative(it->path(), dir).generic_string()] = *facts;
  }
  if (error) {
    return absl::InternalError(absl::StrCat(dir.string(), ": cannot list: ", error.message()));
  }
  nlohmann::json manifest = {{"format", "rlhf.checkpoint_manifest.v1"},
                             {"files", nlohmann::json::object()}};
  for (const auto& [name, facts] : files) {
    manifest["files"][name] = {{"size", facts.size}, {"sha256", facts.sha256}};
  }
  return WriteFileAtomically(dir / kManifestFile, manifest.dump(1) + "\n");
}

absl::Status VerifyCheckpointManifest(const fs::path& dir) {
  const fs::path path = dir / kManifestFile;
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat(path.string(), ": no manifest"));
  nlohmann::json manifest = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (!manifest.is_object() || !manifest.contains("files") || !manifest["files"].is_object()) {
    return absl::DataLossError(absl::StrCat(path.string(), ": malformed manifest"));
  }
  for (const auto& [name, expected] : manifest["files"].items()) {
    if (!expected.is_object() || !expected.contains("size") || !expected.contains("sha256") ||
        !expected["size"].is_number_unsigned() || !expected["sha256"].is_string()) {
      return absl::DataLossError(absl::StrCat(path.string(), ": malformed entry for ", name));
    }
    const fs::path file = dir / name;
    std::error_code error;
    if (!fs::is_regular_file(file, error)) {
      return absl::DataLossError(absl::StrCat(file.string(), ": missing"));
    }
    const uint64_t size = fs::file_size(file, error);
    if (error || size != expected["size"].get<uint64_t>()) {
      return absl::DataLossError(absl::StrCat(file.string(), ": ", size,
                                              " bytes, the manifest says ",
                                              expected["size"].get<uint64_t>()));
    }
    auto facts = Hash(file);
    if (!facts.ok()) return facts.status();
    if (facts->sha256 != expected["sha256"].get<std::string>()) {
      return absl::DataLossError(
          absl::StrCat(file.string(), ": SHA-256 differs from the manifest's (damaged)"));
    }
  }
  return absl::OkStatus();
}

}  // namespace rlhf::io
