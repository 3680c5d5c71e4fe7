#include "common/tokenizer/byte_level.h"

#include <array>

#include "common/tokenizer/utf8.h"

namespace rlhf::tokenizer {
namespace {

struct ByteTables {
  std::array<char32_t, 256> byte_to_char{};
  std::array<std::string, 256> byte_to_utf8;
  std::array<uint8_t, 68> shifted_to_byte{};  // U+0100 + i -> byte
};

// bytes_to_unicode(): printable Latin-1 bytes map to themselves, the other 68 bytes to
// U+0100 onwards in byte order.
const ByteTables& Tables() {
  static const ByteTables* tables = [] {
    auto* t = new ByteTables;
    int next = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable =
          (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      if (!printable) t->shifted_to_byte[next] = static_cast<uint8_t>(b);
      t->byte_to_char[b] = printable ? static_cast<char32_t>(b) : 256 + next++;
      AppendUtf8(t->byte_to_utf8[b], t->byte_to_char[b]);
    }
    return t;
  }();
  return *tables;
}

}  // namespace

std::string BytesToByteLevel(std::string_view bytes) {
  const ByteTables& tables = Tables();
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) out += tables.byte_to_utf8[static_cast<uint8_t>(c)];
  return out;
}

std::optional<uint8_t> ByteLevelCharToByte(char32_t c) {
  if ((c >= '!' && c <= '~') || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE && c <= 0xFF)) {
    return static_cast<uint8_t>(c);
  }
  if (c < 256 || c >= 256 + 68) return std::nullopt;
  return Tables().shifted_to_byte[c - 256];
}

}  // namespace rlhf::tokenizer
