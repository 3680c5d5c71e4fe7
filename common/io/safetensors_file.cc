#include "common/io/safetensors_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <tuple>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/io/json_util.h"

namespace rlhf::io {
namespace {

using internal::Quote;
using nlohmann::json;

constexpr size_t kLengthPrefixBytes = 8;
constexpr std::string_view kMetadataKey = "__metadata__";

// A header entry before the data section is checked as a whole.
struct Entry {
  TensorView view;
  uint64_t begin = 0;
  uint64_t end = 0;
  size_t header_index = 0;
};

std::string ShapeText(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

std::string OffsetsText(uint64_t begin, uint64_t end) {
  return absl::StrCat("[", begin, ", ", end, ")");
}

// Reads a JSON value that must be an integer in [0, max]; `what` names it in errors.
absl::StatusOr<uint64_t> NonNegativeInt(const json& value, absl::string_view what, uint64_t max) {
  if (value.is_number_unsigned()) {
    const uint64_t v = value.get<uint64_t>();
    if (v <= max) return v;
    return absl::InvalidArgumentError(absl::StrCat(what, " is ", v, ", larger than ", max));
  }
  if (value.is_number_integer()) {  // nlohmann stores only negative integers as signed
    return absl::InvalidArgumentError(
        absl::StrCat(what, " is ", value.get<int64_t>(), ", must be a non-negative integer"));
  }
  return absl::InvalidArgumentError(
      absl::StrCat(what, " has type ", value.type_name(), ", must be a non-negative integer"));
}

absl::StatusOr<std::map<std::string, std::string>> ParseMetadata(const json& value) {
  std::map<std::string, std::string> metadata;
  if (value.is_null()) return metadata;  // the reference reads null as "no metadata"
  if (!value.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat("__metadata__ has type ", value.type_name(),
                                                   ", must be an object of string to string"));
  }
  for (const auto& [key, item] : value.items()) {
    if (!item.is_string()) {
      return absl::InvalidArgumentError(absl::StrCat("__metadata__ key ", Quote(key), " has type ",
                                                     item.type_name(), ", must be a string"));
    }
    metadata.emplace(key, item.get<std::string>());
  }
  return metadata;
}

// Parses and checks one tensor entry on its own: field types, dtype, and that the
// offsets hold exactly dtype x shape bytes. Placement in the data section comes later.
absl::StatusOr<Entry> ParseEntry(const std::string& name, const json& value) {
  if (!value.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("entry has type ", value.type_name(), ", must be an object"));
  }
  Entry entry;
  entry.view.name = name;
  // Unknown fields are ignored, as serde does for the reference's TensorInfo.
  const auto dtype_it = value.find("dtype");
  const auto shape_it = value.find("shape");
  const auto offsets_it = value.find("data_offsets");
  for (const auto& [it, field] : {std::pair{dtype_it, "dtype"}, std::pair{shape_it, "shape"},
                                  std::pair{offsets_it, "data_offsets"}}) {
    if (it == value.end()) {
      return absl::InvalidArgumentError(absl::StrCat("missing \"", field, "\""));
    }
  }
  if (!dtype_it->is_string()) {
    return absl::InvalidArgumentError(
        absl::StrCat("dtype has type ", dtype_it->type_name(), ", must be a string"));
  }
  const std::string& dtype_name = dtype_it->get_ref<const std::string&>();
  absl::StatusOr<DType> dtype = ParseDType(dtype_name);
  if (!dtype.ok()) {
    return dtype.status();
  }
  entry.view.dtype = *dtype;

  if (!shape_it->is_array()) {
    return absl::InvalidArgumentError(
        absl::StrCat("shape has type ", shape_it->type_name(), ", must be an array"));
  }
  // Elements are counted in 64 bits with overflow checks; the reference uses checked usize.
  uint64_t elements = 1;
  bool overflow = false;
  for (size_t i = 0; i < shape_it->size(); ++i) {
    absl::StatusOr<uint64_t> dim = NonNegativeInt((*shape_it)[i], absl::StrCat("shape[", i, "]"),
                                                  std::numeric_limits<int64_t>::max());
    if (!dim.ok()) return dim.status();
    entry.view.shape.push_back(static_cast<int64_t>(*dim));
    overflow |= __builtin_mul_overflow(elements, *dim, &elements);
  }
  uint64_t needed = 0;
  overflow |= __builtin_mul_overflow(elements, DTypeSize(*dtype), &needed);
  if (overflow) {
    return absl::InvalidArgumentError(absl::StrCat(
        "byte size of ", dtype_name, " ", ShapeText(entry.view.shape), " overflows 64 bits"));
  }

  if (!offsets_it->is_array() || offsets_it->size() != 2) {
    return absl::InvalidArgumentError("data_offsets must be an array [begin, end]");
  }
  const uint64_t kMaxOffset = std::numeric_limits<uint64_t>::max();
  absl::StatusOr<uint64_t> begin = NonNegativeInt((*offsets_it)[0], "data_offsets[0]", kMaxOffset);
  if (!begin.ok()) return begin.status();
  absl::StatusOr<uint64_t> end = NonNegativeInt((*offsets_it)[1], "data_offsets[1]", kMaxOffset);
  if (!end.ok()) return end.status();
  if (*begin > *end) {
    return absl::InvalidArgumentError(absl::StrCat("data_offsets [", *begin, ", ", *end,
                                                   "] are reversed: begin must not exceed end"));
  }
  if (*end - *begin != needed) {
    return absl::InvalidArgumentError(absl::StrCat(
        "data_offsets ", OffsetsText(*begin, *end), " hold ", *end - *begin, " bytes but ",
        dtype_name, " ", ShapeText(entry.view.shape), " needs ", needed));
  }
  entry.begin = *begin;
  entry.end = *end;
  entry.view.nbytes = static_cast<size_t>(needed);
  return entry;
}

}  // namespace

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(
    const std::filesystem::path& path) {
  std::unique_ptr<SafetensorsFile> file(new SafetensorsFile(path.string()));
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    return absl::ErrnoToStatus(err, absl::StrCat(path.string(), ": cannot open"));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return absl::ErrnoToStatus(err, absl::StrCat(path.string(), ": cannot stat"));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return absl::InvalidArgumentError(absl::StrCat(path.string(), ": not a regular file"));
  }
  file->size_ = static_cast<size_t>(st.st_size);
  // mmap rejects length 0; a file that small fails validation anyway, so skip the mapping.
  if (file->size_ >= kLengthPrefixBytes) {
    void* addr = ::mmap(nullptr, file->size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (addr == MAP_FAILED) {
      const int err = errno;
      ::close(fd);
      return absl::ErrnoToStatus(err, absl::StrCat(path.string(), ": cannot mmap"));
    }
    file->mapping_ = addr;
    file->bytes_ = static_cast<const uint8_t*>(addr);
  }
  ::close(fd);  // the mapping keeps the file referenced
  if (absl::Status status = file->Validate(); !status.ok()) return status;
  return file;
}

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Parse(std::string_view bytes,
                                                                        std::string source_name) {
  std::unique_ptr<SafetensorsFile> file(new SafetensorsFile(std::move(source_name)));
  file->owned_ = std::make_unique_for_overwrite<uint8_t[]>(bytes.size());
  if (!bytes.empty()) std::memcpy(file->owned_.get(), bytes.data(), bytes.size());
  file->bytes_ = file->owned_.get();
  file->size_ = bytes.size();
  if (absl::Status status = file->Validate(); !status.ok()) return status;
  return file;
}

SafetensorsFile::~SafetensorsFile() {
  if (mapping_ != nullptr) ::munmap(mapping_, size_);
}

const TensorView* SafetensorsFile::Find(std::string_view name) const {
  const auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &tensors_[it->second];
}

absl::Status SafetensorsFile::Validate() {
  const auto error = [&](absl::string_view message) {
    return absl::InvalidArgumentError(absl::StrCat(source_name_, ": ", message));
  };
  if (size_ < kLengthPrefixBytes) {
    return error(absl::StrCat("file is ", size_, " bytes, too short for the 8-byte header length"));
  }
  uint64_t header_len = 0;
  for (size_t i = 0; i < kLengthPrefixBytes; ++i) {
    header_len |= static_cast<uint64_t>(bytes_[i]) << (8 * i);  // little-endian
  }
  if (header_len > kMaxSafetensorsHeaderBytes) {
    return error(absl::StrCat("header length ", header_len, " exceeds the cap of ",
                              kMaxSafetensorsHeaderBytes, " bytes"));
  }
  const size_t after_prefix = size_ - kLengthPrefixBytes;
  if (header_len > after_prefix) {
    return error(absl::StrCat("header length ", header_len, " runs past the end of the file (",
                              after_prefix, " bytes follow the length)"));
  }
  const std::string_view header(reinterpret_cast<const char*>(bytes_) + kLengthPrefixBytes,
                                header_len);
  if (std::optional<size_t> bad = internal::FindInvalidUtf8(header)) {
    return error(absl::StrCat("header is not valid UTF-8 (byte ", *bad, " of the header)"));
  }
  if (header.empty() || header.front() != '{') {
    return error("header must be a JSON object starting with '{'");
  }
  // nlohmann accepts trailing whitespace, which covers the writer's space padding.
  std::vector<std::string> keys;  // header order, to break ties between zero-size tensors
  absl::StatusOr<json> parsed = internal::ParseJsonStrict(header, &keys);
  if (!parsed.ok())
    return error(absl::StrCat("header is not valid JSON: ", parsed.status().message()));
  if (!parsed->is_object()) return error("header must be a JSON object starting with '{'");

  std::vector<Entry> entries;
  size_t header_index = 0;
  for (const std::string& key : keys) {
    const json& value = *parsed->find(key);  // present: the parser reported it
    if (key == kMetadataKey) {
      absl::StatusOr<std::map<std::string, std::string>> metadata = ParseMetadata(value);
      if (!metadata.ok()) return error(metadata.status().message());
      metadata_ = *std::move(metadata);
      continue;
    }
    absl::StatusOr<Entry> entry = ParseEntry(key, value);
    if (!entry.ok()) {
      return error(absl::StrCat("tensor ", Quote(key), ": ", entry.status().message()));
    }
    entry->header_index = header_index++;
    entries.push_back(*std::move(entry));
  }

  // The reference sorts by offsets and then requires the data to tile the data section.
  const uint64_t data_size = after_prefix - header_len;
  std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return std::tie(a.begin, a.end) < std::tie(b.begin, b.end);
  });
  uint64_t covered = 0;
  for (size_t i = 0; i < entries.size(); ++i) {
    const Entry& e = entries[i];
    const std::string where =
        absl::StrCat("tensor ", Quote(e.view.name), ": data_offsets ", OffsetsText(e.begin, e.end));
    if (e.end > data_size) {
      return error(absl::StrCat(where, " lie outside the data section of ", data_size,
                                " bytes (the file ends too soon)"));
    }
    if (e.begin < covered) {
      const Entry& prev = entries[i - 1];
      return error(absl::StrCat(where, " overlap tensor ", Quote(prev.view.name), " at ",
                                OffsetsText(prev.begin, prev.end)));
    }
    if (e.begin > covered) {
      return error(absl::StrCat(where, " leave a gap of ", e.begin - covered,
                                " bytes after offset ", covered));
    }
    covered = e.end;
  }
  if (covered != data_size) {
    return error(absl::StrCat(data_size - covered, " trailing bytes after the tensor data (",
                              "tensors cover ", covered, " of ", data_size, " data bytes)"));
  }

  const uint8_t* data_start = bytes_ + kLengthPrefixBytes + header_len;
  tensors_.reserve(entries.size());
  for (Entry& e : entries) {
    e.view.data = data_start + e.begin;
    tensors_.push_back(std::move(e.view));
  }
  // Built only now: the keys view strings that must no longer move.
  by_name_.reserve(tensors_.size());
  for (size_t i = 0; i < tensors_.size(); ++i) by_name_.emplace(tensors_[i].name, i);
  return absl::OkStatus();
}

}  // namespace rlhf::io
