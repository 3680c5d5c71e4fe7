// libFuzzer target for SafetensorsFile::Parse, the parser that sees untrusted checkpoint
// bytes. Beyond "no crash", it checks two properties on every accepted input: each
// tensor's bytes lie inside the buffer (touching them lets ASan catch a bad view), and the
// writer re-serializes the parsed file into something the reader accepts unchanged.
//
// Seeds: tests/fuzz/corpus/safetensors (made by tests/fuzz/make_safetensors_seeds.py). Run with a
// scratch corpus first so new inputs do not land in the committed seeds:
//   safetensors_fuzzer corpus-safetensors/ tests/fuzz/corpus/safetensors

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "common/io/safetensors.h"

namespace {

void Check(bool condition) {
  if (!condition) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using rlhf::io::SafetensorsFile;
  using rlhf::io::TensorView;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> file = SafetensorsFile::Parse(bytes, "fuzz");
  if (!file.ok()) {
    Check(!file.status().message().empty());
    return 0;
  }
  const std::string_view buffer = (*file)->bytes();
  const auto* begin = reinterpret_cast<const uint8_t*>(buffer.data());
  uint8_t sum = 0;
  for (const TensorView& t : (*file)->tensors()) {
    Check(t.data >= begin && t.data + t.nbytes <= begin + buffer.size());
    for (size_t i = 0; i < t.nbytes; ++i) sum ^= t.data[i];
    Check((*file)->Find(t.name) == &t);
  }
  volatile uint8_t sink = sum;  // keep the reads
  (void)sink;

  absl::StatusOr<std::string> rewritten =
      rlhf::io::SerializeSafetensors((*file)->tensors(), (*file)->metadata());
  Check(rewritten.ok());
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> again =
      SafetensorsFile::Parse(*rewritten, "fuzz-rewritten");
  Check(again.ok());
  Check((*again)->metadata() == (*file)->metadata());
  Check((*again)->tensors().size() == (*file)->tensors().size());
  for (size_t i = 0; i < (*file)->tensors().size(); ++i) {
    const TensorView& a = (*file)->tensors()[i];
    const TensorView& b = (*again)->tensors()[i];
    Check(a.name == b.name && a.dtype == b.dtype && a.shape == b.shape && a.nbytes == b.nbytes);
    Check(std::string_view(reinterpret_cast<const char*>(a.data), a.nbytes) ==
          std::string_view(reinterpret_cast<const char*>(b.data), b.nbytes));
  }
  return 0;
}
