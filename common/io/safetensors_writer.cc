#include "common/io/safetensors_writer.h"

#include <cstdint>
#include <exception>
#include <string_view>
#include <system_error>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/io/atomic_file.h"
#include "common/io/json_util.h"
#include "common/io/safetensors_checkpoint.h"

namespace rlhf::io {
namespace {

using internal::AppendJsonString;
using internal::Quote;
using internal::ToAbsl;

constexpr size_t kHeaderAlignment = 8;

absl::Status CheckTensor(const TensorView& t) {
  const auto error = [&](absl::string_view message) {
    return absl::InvalidArgumentError(absl::StrCat("tensor ", Quote(t.name), ": ", message));
  };
  if (internal::FindInvalidUtf8(t.name)) return error("name is not valid UTF-8");
  if (t.name == "__metadata__") return error("name is reserved for the metadata map");
  uint64_t needed = DTypeSize(t.dtype);
  for (int64_t dim : t.shape) {
    if (dim < 0) return error(absl::StrCat("negative dimension ", dim));
    if (__builtin_mul_overflow(needed, static_cast<uint64_t>(dim), &needed)) {
      return error("byte size overflows 64 bits");
    }
  }
  if (needed != t.nbytes) {
    return error(absl::StrCat("nbytes is ", t.nbytes, " but ", ToAbsl(DTypeName(t.dtype)), " [",
                              absl::StrJoin(t.shape, ", "), "] needs ", needed));
  }
  if (t.data == nullptr && t.nbytes > 0) return error("data is null");
  return absl::OkStatus();
}

// The padded JSON header, laid out like the reference's serde output:
// {"__metadata__":{...},"name":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},...}
absl::StatusOr<std::string> BuildHeader(std::span<const TensorView> tensors,
                                        const std::map<std::string, std::string>& metadata) {
  absl::flat_hash_set<std::string_view> names;
  for (const TensorView& t : tensors) {
    if (absl::Status s = CheckTensor(t); !s.ok()) return s;
    if (!names.insert(t.name).second) {
      return absl::InvalidArgumentError(absl::StrCat("tensor ", Quote(t.name), " appears twice"));
    }
  }
  for (const auto& [key, value] : metadata) {
    if (internal::FindInvalidUtf8(key) || internal::FindInvalidUtf8(value)) {
      return absl::InvalidArgumentError(
          absl::StrCat("metadata entry ", Quote(key), " is not valid UTF-8"));
    }
  }

  std::string header = "{";
  if (!metadata.empty()) {
    header += "\"__metadata__\":{";
    bool first = true;
    for (const auto& [key, value] : metadata) {
      if (!first) header += ',';
      first = false;
      AppendJsonString(&header, key);
      header += ':';
      AppendJsonString(&header, value);
    }
    header += '}';
  }
  uint64_t offset = 0;
  for (const TensorView& t : tensors) {
    if (header.size() > 1) header += ',';
    AppendJsonString(&header, t.name);
    absl::StrAppend(&header, ":{\"dtype\":\"", ToAbsl(DTypeName(t.dtype)), "\",\"shape\":[",
                    absl::StrJoin(t.shape, ","), "],\"data_offsets\":[", offset, ",",
                    offset + t.nbytes, "]}");
    offset += t.nbytes;
  }
  header += '}';
  header.append((kHeaderAlignment - header.size() % kHeaderAlignment) % kHeaderAlignment, ' ');
  if (header.size() > kMaxSafetensorsHeaderBytes) {
    return absl::InvalidArgumentError(absl::StrCat("header would be ", header.size(),
                                                   " bytes, over the format's cap of ",
                                                   kMaxSafetensorsHeaderBytes));
  }
  return header;
}

std::string LengthPrefix(size_t header_size) {
  std::string prefix(8, '\0');
  for (size_t i = 0; i < 8; ++i) {
    prefix[i] = static_cast<char>((static_cast<uint64_t>(header_size) >> (8 * i)) & 0xFF);
  }
  return prefix;
}

absl::Status WithPath(const absl::Status& status, const std::filesystem::path& path) {
  if (status.ok()) return status;
  return absl::Status(status.code(), absl::StrCat(path.string(), ": ", status.message()));
}

// "model-00002-of-00005.safetensors", transformers' shard naming.
std::string ShardName(size_t index, size_t count) {
  return absl::StrFormat("model-%05d-of-%05d.safetensors", index + 1, count);
}

bool IsShardName(std::string_view name) {
  constexpr std::string_view kPrefix = "model-", kSuffix = ".safetensors";
  if (!name.starts_with(kPrefix) || !name.ends_with(kSuffix)) return false;
  name = name.substr(kPrefix.size(), name.size() - kPrefix.size() - kSuffix.size());
  const size_t of = name.find("-of-");
  if (of == std::string_view::npos || of == 0 || of + 4 == name.size()) return false;
  for (std::string_view digits : {name.substr(0, of), name.substr(of + 4)}) {
    for (char c : digits) {
      if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
    }
  }
  return true;
}

// Removes checkpoint files in `dir` that are not in `keep`, so a reader cannot mix layouts.
absl::Status RemoveStaleFiles(const std::filesystem::path& dir,
                              const absl::flat_hash_set<std::string>& keep) {
  std::error_code ec;
  std::vector<std::filesystem::path> stale;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    const bool ours =
        name == kSafetensorsFileName || name == kSafetensorsIndexFileName || IsShardName(name);
    if (ours && !keep.contains(name)) stale.push_back(entry.path());
  }
  if (ec) return absl::InternalError(absl::StrCat(dir.string(), ": cannot list: ", ec.message()));
  for (const auto& path : stale) {
    if (!std::filesystem::remove(path, ec) && ec) {
      return absl::InternalError(
          absl::StrCat(path.string(), ": cannot remove stale file: ", ec.message()));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> SerializeSafetensors(
    std::span<const TensorView> tensors, const std::map<std::string, std::string>& metadata) {
  absl::StatusOr<std::string> header = BuildHeader(tensors, metadata);
  if (!header.ok()) return header.status();
  std::string out = LengthPrefix(header->size());
  out += *header;
  for (const TensorView& t : tensors) {
    if (t.nbytes > 0) out.append(reinterpret_cast<const char*>(t.data), t.nbytes);
  }
  return out;
}

absl::Status WriteSafetensors(const std::filesystem::path& path,
                              std::span<const TensorView> tensors,
                              const std::map<std::string, std::string>& metadata) {
  absl::StatusOr<std::string> header = BuildHeader(tensors, metadata);
  if (!header.ok()) return WithPath(header.status(), path);
  absl::StatusOr<std::unique_ptr<AtomicFileWriter>> writer = AtomicFileWriter::Create(path);
  if (!writer.ok()) return writer.status();
  if (absl::Status s = (*writer)->Append(LengthPrefix(header->size())); !s.ok()) return s;
  if (absl::Status s = (*writer)->Append(*header); !s.ok()) return s;
  // Tensor bytes go straight from the caller's buffers: no copy of the whole model.
  for (const TensorView& t : tensors) {
    if (t.nbytes == 0) continue;
    if (absl::Status s = (*writer)->Append(t.data, t.nbytes); !s.ok()) return s;
  }
  return (*writer)->Commit();
}

absl::Status WriteShardedSafetensors(const std::filesystem::path& dir,
                                     std::span<const TensorView> tensors,
                                     const std::map<std::string, std::string>& metadata,
                                     size_t max_shard_bytes) {
  if (max_shard_bytes == 0) {
    return absl::InvalidArgumentError(absl::StrCat(dir.string(), ": max_shard_bytes must be > 0"));
  }
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return absl::InternalError(absl::StrCat(dir.string(), ": cannot create: ", ec.message()));
  }

  // Greedy packing in order, as huggingface_hub's split_torch_state_dict_into_shards does.
  std::vector<std::span<const TensorView>> shards;
  uint64_t total_size = 0;
  size_t shard_begin = 0;
  uint64_t shard_bytes = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const uint64_t n = tensors[i].nbytes;
    if (i > shard_begin && shard_bytes + n > max_shard_bytes) {
      shards.push_back(tensors.subspan(shard_begin, i - shard_begin));
      shard_begin = i;
      shard_bytes = 0;
    }
    shard_bytes += n;
    total_size += n;
  }
  shards.push_back(tensors.subspan(shard_begin));

  if (shards.size() == 1) {
    const std::filesystem::path path = dir / kSafetensorsFileName;
    if (absl::Status s = WriteSafetensors(path, tensors, metadata); !s.ok()) return s;
    return RemoveStaleFiles(dir, {std::string(kSafetensorsFileName)});
  }

  nlohmann::json index_metadata(nlohmann::json::value_t::object);
  for (const auto& [key, value] : metadata) index_metadata[key] = value;
  index_metadata["total_size"] = total_size;
  nlohmann::json weight_map(nlohmann::json::value_t::object);
  absl::flat_hash_set<std::string> keep = {std::string(kSafetensorsIndexFileName)};
  for (size_t s = 0; s < shards.size(); ++s) {
    const std::string name = ShardName(s, shards.size());
    if (absl::Status st = WriteSafetensors(dir / name, shards[s], metadata); !st.ok()) return st;
    for (const TensorView& t : shards[s]) weight_map[t.name] = name;
    keep.insert(name);
  }
  std::string index_text;
  try {
    // transformers writes json.dumps(index, indent=2, sort_keys=True) + "\n".
    index_text = nlohmann::json{{"metadata", index_metadata}, {"weight_map", weight_map}}.dump(2);
  } catch (const std::exception& e) {  // only on invalid UTF-8, which BuildHeader refused
    return absl::InternalError(absl::StrCat(dir.string(), ": cannot encode index: ", e.what()));
  }
  index_text += '\n';
  const std::filesystem::path index_path = dir / kSafetensorsIndexFileName;
  if (absl::Status s = WriteFileAtomically(index_path, index_text); !s.ok()) return s;
  return RemoveStaleFiles(dir, keep);
}

}  // namespace rlhf::io
