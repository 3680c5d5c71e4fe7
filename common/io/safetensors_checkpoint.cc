#include "common/io/safetensors_checkpoint.h"

#include <fstream>
#include <system_error>
#include <utility>

#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/io/json_util.h"

namespace rlhf::io {
namespace {

using internal::Quote;
using nlohmann::json;

// Index files are small (a line per tensor); anything this big is not one.
constexpr std::uintmax_t kMaxIndexBytes = 256u << 20;

bool IsFile(const std::filesystem::path& path) {
  std::error_code ec;
  return std::filesystem::is_regular_file(path, ec);
}

absl::StatusOr<std::string> ReadSmallFile(const std::filesystem::path& path) {
  std::error_code ec;
  const std::uintmax_t size = std::filesystem::file_size(path, ec);
  if (ec) return absl::NotFoundError(absl::StrCat(path.string(), ": ", ec.message()));
  if (size > kMaxIndexBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(path.string(), ": ", size, " bytes is too large for an index file"));
  }
  std::string contents(static_cast<size_t>(size), '\0');
  std::ifstream in(path, std::ios::binary);
  if (!in.read(contents.data(), static_cast<std::streamsize>(size))) {
    return absl::InternalError(absl::StrCat(path.string(), ": read failed"));
  }
  return contents;
}

// A weight_map value must name a file beside the index, not a path that escapes it.
bool IsPlainFileName(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos &&
         name.find('\0') == std::string::npos;
}

}  // namespace

absl::StatusOr<std::unique_ptr<SafetensorsCheckpoint>> SafetensorsCheckpoint::Open(
    const std::filesystem::path& dir) {
  std::unique_ptr<SafetensorsCheckpoint> checkpoint(new SafetensorsCheckpoint());
  const std::filesystem::path single = dir / kSafetensorsFileName;
  if (IsFile(single)) {
    absl::StatusOr<std::unique_ptr<SafetensorsFile>> file = SafetensorsFile::Open(single);
    if (!file.ok()) return file.status();
    checkpoint->metadata_ = (*file)->metadata();
    checkpoint->files_.push_back(*std::move(file));
  } else if (IsFile(dir / kSafetensorsIndexFileName)) {
    checkpoint->sharded_ = true;
    if (absl::Status s = checkpoint->OpenSharded(dir); !s.ok()) return s;
  } else {
    return absl::NotFoundError(absl::StrCat("no ", internal::ToAbsl(kSafetensorsFileName), " or ",
                                            internal::ToAbsl(kSafetensorsIndexFileName), " in ",
                                            dir.string()));
  }
  checkpoint->IndexTensors();
  return checkpoint;
}

absl::Status SafetensorsCheckpoint::OpenSharded(const std::filesystem::path& dir) {
  const std::filesystem::path index_path = dir / kSafetensorsIndexFileName;
  const auto error = [&](absl::string_view message) {
    return absl::InvalidArgumentError(absl::StrCat(index_path.string(), ": ", message));
  };
  absl::StatusOr<std::string> text = ReadSmallFile(index_path);
  if (!text.ok()) return text.status();
  if (std::optional<size_t> bad = internal::FindInvalidUtf8(*text)) {
    return error(absl::StrCat("not valid UTF-8 (byte ", *bad, ")"));
  }
  absl::StatusOr<json> index = internal::ParseJsonStrict(*text);
  if (!index.ok()) return error(absl::StrCat("not valid JSON: ", index.status().message()));
  if (!index->is_object()) return error("must be a JSON object");

  if (const auto it = index->find("metadata"); it != index->end() && !it->is_null()) {
    if (!it->is_object()) return error("\"metadata\" must be an object");
    for (const auto& [key, value] : it->items()) {
      // replace: never throws, and the text was checked as UTF-8 above anyway.
      metadata_[key] = value.is_string()
                           ? value.get<std::string>()
                           : value.dump(-1, ' ', false, json::error_handler_t::replace);
    }
  }
  const auto map_it = index->find("weight_map");
  if (map_it == index->end() || !map_it->is_object()) {
    return error("\"weight_map\" must be an object of tensor name to file name");
  }
  // file name -> tensor names the index assigns it (std::map: shards in file-name order).
  std::map<std::string, std::vector<std::string>> assigned;
  for (const auto& [name, file] : map_it->items()) {
    if (!file.is_string() || !IsPlainFileName(file.get_ref<const std::string&>())) {
      return error(absl::StrCat("weight_map entry ", Quote(name),
                                " must name a file in the same directory"));
    }
    assigned[file.get<std::string>()].push_back(name);
  }

  // Checked in passes so the first error is the most telling one: missing files, then
  // unreadable files, then names the index places wrongly, then names it leaves out.
  for (const auto& [file_name, names] : assigned) {
    if (!IsFile(dir / file_name)) {
      return absl::NotFoundError(absl::StrCat(index_path.string(), ": shard ", Quote(file_name),
                                              " (holding tensor ", Quote(names.front()),
                                              ") does not exist"));
    }
  }
  for (const auto& [file_name, names] : assigned) {
    absl::StatusOr<std::unique_ptr<SafetensorsFile>> file = SafetensorsFile::Open(dir / file_name);
    if (!file.ok()) return file.status();
    files_.push_back(*std::move(file));
  }
  size_t i = 0;
  for (const auto& [file_name, names] : assigned) {
    for (const std::string& name : names) {
      if (files_[i]->Find(name) == nullptr) {
        return error(absl::StrCat("tensor ", Quote(name), " is mapped to ", Quote(file_name),
                                  ", which does not contain it"));
      }
    }
    ++i;
  }
  i = 0;
  for (const auto& [file_name, names] : assigned) {
    // Every assigned name was found and names are unique, so equal counts mean equal sets.
    if (files_[i]->tensors().size() != names.size()) {
      for (const TensorView& t : files_[i]->tensors()) {
        const auto mapped = map_it->find(t.name);
        if (mapped == map_it->end() || *mapped != file_name) {
          return error(absl::StrCat("shard ", Quote(file_name), " holds tensor ", Quote(t.name),
                                    ", which the weight_map does not assign to it"));
        }
      }
    }
    ++i;
  }
  return absl::OkStatus();
}

void SafetensorsCheckpoint::IndexTensors() {
  for (const auto& file : files_) {
    for (const TensorView& t : file->tensors()) {
      tensors_.push_back(&t);
      by_name_.emplace(t.name, &t);
    }
  }
}

const TensorView* SafetensorsCheckpoint::Find(std::string_view name) const {
  const auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

std::vector<std::string> SafetensorsCheckpoint::names() const {
  std::vector<std::string> names;
  names.reserve(tensors_.size());
  for (const TensorView* t : tensors_) names.push_back(t->name);
  return names;
}

}  // namespace rlhf::io
