#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "common/io/dtype.h"

namespace rlhf::io {

// One tensor of a safetensors file: little-endian, C-contiguous bytes. `data` points into
// the buffer of the SafetensorsFile it came from and lives as long as that object. For a
// writer's input, `data` may be null when `nbytes` is 0.
struct TensorView {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;  // empty for a 0-d (scalar) tensor
  const uint8_t* data = nullptr;
  size_t nbytes = 0;
};

// The header length prefix is capped like the reference implementation
// (huggingface/safetensors MAX_HEADER_SIZE), so a corrupt prefix cannot make us parse
// gigabytes of JSON.
inline constexpr uint64_t kMaxSafetensorsHeaderBytes = 100'000'000;

// A validated, read-only safetensors file (https://github.com/huggingface/safetensors).
// Validation is as strict as the reference `SafeTensors::read_metadata`: known dtypes,
// byte sizes matching dtype x shape, and tensor data tiling the data section exactly (no
// gaps, overlaps or trailing bytes). It also refuses repeated JSON keys. Errors are
// InvalidArgument (NotFound for a missing file) and name the source and the tensor.
//
// Immutable after construction, so safe to read from many threads.
class SafetensorsFile {
 public:
  // Memory-maps `path` (read-only, MAP_PRIVATE) and validates it. Tensor data is not read
  // until touched. If another process truncates the file while it is mapped, touching the
  // lost pages raises SIGBUS: checkpoints are written to a new name and renamed, never
  // rewritten in place, which avoids that.
  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> Open(const std::filesystem::path& path);

  // Validates an in-memory file. Copies `bytes` into a buffer of exactly that size that
  // the returned object owns, so the caller's buffer may go away (and so that the fuzzer's
  // address sanitizer sees any read past the end). `source_name` prefixes error messages.
  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> Parse(std::string_view bytes,
                                                                std::string source_name);

  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;
  ~SafetensorsFile();

  // Tensors in the order their data appears in the file (by data offset; zero-size tensors
  // sharing an offset keep their header order). This is the order the writer was given.
  const std::vector<TensorView>& tensors() const { return tensors_; }

  // The tensor named `name`, or nullptr.
  const TensorView* Find(std::string_view name) const;

  // The header's "__metadata__" map (empty if absent or null).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  // The path for Open, the caller's name for Parse.
  const std::string& source_name() const { return source_name_; }

  // The whole file, header included.
  std::string_view bytes() const { return {reinterpret_cast<const char*>(bytes_), size_}; }

 private:
  explicit SafetensorsFile(std::string source_name) : source_name_(std::move(source_name)) {}
  absl::Status Validate();

  std::string source_name_;
  const uint8_t* bytes_ = nullptr;
  size_t size_ = 0;
  void* mapping_ = nullptr;           // non-null when bytes_ is an mmap of size_ bytes
  std::unique_ptr<uint8_t[]> owned_;  // the copy made by Parse
  std::vector<TensorView> tensors_;
  absl::flat_hash_map<std::string_view, size_t> by_name_;  // keys view tensors_[i].name
  std::map<std::string, std::string> metadata_;
};

}  // namespace rlhf::io
