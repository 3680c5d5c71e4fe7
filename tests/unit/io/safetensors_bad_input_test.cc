// Every way a safetensors file can be malformed gets its own test: the error must be
// InvalidArgument (NotFound for missing files) and name the file and what is wrong.

#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <string>
#include <string_view>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"

#include "common/io/safetensors_file.h"
#include "tests/unit/io/test_util.h"

namespace rlhf::io {
namespace {

using ::rlhf::io::testing::RawFile;
using ::rlhf::io::testing::TestDir;
using ::rlhf::io::testing::WriteBytes;
using ::testing::HasSubstr;

// Checks both entry points: Open (mmap, message names the path) and Parse (names the
// caller's source name). Returns the Open message for further checks.
std::string ExpectInvalid(std::string_view bytes, std::initializer_list<std::string_view> words) {
  const std::filesystem::path path = TestDir() / "model.safetensors";
  WriteBytes(path, bytes);
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> opened = SafetensorsFile::Open(path);
  EXPECT_EQ(opened.status().code(), absl::StatusCode::kInvalidArgument) << opened.status();
  const std::string message(opened.status().message());
  EXPECT_THAT(message, ::testing::StartsWith(path.string() + ": "));
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> parsed =
      SafetensorsFile::Parse(bytes, "in-memory.safetensors");
  EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << parsed.status();
  EXPECT_THAT(std::string(parsed.status().message()),
              ::testing::StartsWith("in-memory.safetensors: "));
  for (std::string_view word : words) {
    EXPECT_THAT(message, HasSubstr(std::string(word)));
    EXPECT_THAT(std::string(parsed.status().message()), HasSubstr(std::string(word)));
  }
  return message;
}

// One tensor entry of a header, F32 unless told.
std::string Entry(std::string_view name, std::string_view shape, uint64_t begin, uint64_t end,
                  std::string_view dtype = "F32") {
  return absl::StrCat("\"", std::string(name), "\":{\"dtype\":\"", std::string(dtype),
                      "\",\"shape\":", std::string(shape), ",\"data_offsets\":[", begin, ",", end,
                      "]}");
}

// A header object holding `entries`. (Appending, not operator+: GCC 12 gives a false
// -Wrestrict for "literal" + std::string.)
std::string Header(std::initializer_list<std::string> entries) {
  std::string out = "{";
  for (const std::string& e : entries) {
    if (out.size() > 1) out += ',';
    out += e;
  }
  out += '}';
  return out;
}

TEST(SafetensorsBadInput, FileShorterThanEightBytes) {
  ExpectInvalid(std::string_view("\x02\0\0\0{}", 6), {"6 bytes", "too short"});
  ExpectInvalid("", {"0 bytes", "too short"});
}

TEST(SafetensorsBadInput, HeaderLengthLargerThanCap) {
  ExpectInvalid(RawFile(100'000'001, "{}", ""),
                {"header length 100000001", "exceeds the cap of 100000000"});
  ExpectInvalid(RawFile(UINT64_MAX, "{}", ""), {"18446744073709551615", "exceeds the cap"});
}

TEST(SafetensorsBadInput, HeaderLengthPastEndOfFile) {
  ExpectInvalid(RawFile(64, "{}", ""), {"header length 64", "past the end of the file"});
}

TEST(SafetensorsBadInput, HeaderNotJson) {
  ExpectInvalid(RawFile("{not json}", ""), {"header is not valid JSON"});
  ExpectInvalid(RawFile("{}x", ""), {"header is not valid JSON"});
}

TEST(SafetensorsBadInput, HeaderNotUtf8) {
  ExpectInvalid(RawFile("{\"\xC0\xAF\":1}", ""), {"not valid UTF-8", "byte 2"});
}

TEST(SafetensorsBadInput, HeaderJsonNotAnObject) {
  ExpectInvalid(RawFile("[1, 2]", ""), {"must be a JSON object"});
  ExpectInvalid(RawFile(" {}", ""), {"starting with '{'"});  // the reference refuses it too
  ExpectInvalid(RawFile("", ""), {"must be a JSON object"});
}

TEST(SafetensorsBadInput, RepeatedTensorName) {
  ExpectInvalid(
      RawFile(Header({Entry("w", "[1]", 0, 4), Entry("w", "[1]", 4, 8)}), std::string(8, '\0')),
      {"repeated key \"w\""});
}

TEST(SafetensorsBadInput, UnknownDType) {
  ExpectInvalid(RawFile(Header({Entry("w", "[1]", 0, 1, "F8_E4M3")}), std::string(1, '\0')),
                {"tensor \"w\"", "unknown dtype \"F8_E4M3\"", "supported: F64"});
}

TEST(SafetensorsBadInput, MissingField) {
  ExpectInvalid(RawFile(R"({"w":{"dtype":"F32","data_offsets":[0,0]}})", ""),
                {"tensor \"w\"", "missing \"shape\""});
}

TEST(SafetensorsBadInput, EntryNotAnObject) {
  ExpectInvalid(RawFile(R"({"w":[1]})", ""), {"tensor \"w\"", "has type array"});
}

TEST(SafetensorsBadInput, NegativeShape) {
  ExpectInvalid(RawFile(Header({Entry("w", "[2,-3]", 0, 0)}), ""),
                {"tensor \"w\"", "shape[1] is -3", "non-negative"});
}

TEST(SafetensorsBadInput, NonIntegerShape) {
  ExpectInvalid(RawFile(Header({Entry("w", "[1.5]", 0, 4)}), std::string(4, '\0')),
                {"tensor \"w\"", "shape[0] has type number"});
  ExpectInvalid(RawFile(Header({Entry("w", "3", 0, 12)}), std::string(12, '\0')),
                {"shape has type number, must be an array"});
}

TEST(SafetensorsBadInput, ShapeProductOverflows) {
  // 2^32 * 2^32 elements overflow 64 bits; so do 2^62 F32 elements' bytes.
  ExpectInvalid(RawFile(Header({Entry("w", "[4294967296,4294967296]", 0, 0)}), ""),
                {"tensor \"w\"", "overflows 64 bits"});
  ExpectInvalid(RawFile(Header({Entry("w", "[4611686018427387904]", 0, 0)}), ""),
                {"tensor \"w\"", "overflows 64 bits"});
  // A dimension past int64 cannot be represented in TensorView::shape.
  ExpectInvalid(RawFile(Header({Entry("w", "[0,18446744073709551615]", 0, 0)}), ""),
                {"shape[1] is 18446744073709551615, larger than"});
}

TEST(SafetensorsBadInput, SizeMismatchWithDTypeTimesShape) {
  const std::string message = ExpectInvalid(
      RawFile(Header({Entry("h.0.attn.c_attn.weight", "[4,8]", 0, 96)}), std::string(96, 'x')), {});
  EXPECT_EQ(message, (TestDir() / "model.safetensors").string() +
                         ": tensor \"h.0.attn.c_attn.weight\": data_offsets [0, 96) hold 96 "
                         "bytes but F32 [4, 8] needs 128");
}

TEST(SafetensorsBadInput, ReversedOffsets) {
  ExpectInvalid(RawFile(Header({Entry("w", "[0]", 8, 4)}), std::string(8, '\0')),
                {"tensor \"w\"", "[8, 4]", "reversed"});
}

TEST(SafetensorsBadInput, BadOffsetsArray) {
  ExpectInvalid(RawFile(R"({"w":{"dtype":"F32","shape":[],"data_offsets":[0]}})", ""),
                {"tensor \"w\"", "data_offsets must be an array [begin, end]"});
  ExpectInvalid(RawFile(R"({"w":{"dtype":"F32","shape":[0],"data_offsets":[-4,0]}})", ""),
                {"data_offsets[0] is -4"});
}

TEST(SafetensorsBadInput, OffsetsOutsideTheFile) {
  ExpectInvalid(RawFile(Header({Entry("w", "[4]", 0, 16)}), std::string(8, '\0')),
                {"tensor \"w\": data_offsets [0, 16)", "outside the data section of 8 bytes"});
  // Far past the end: no arithmetic may wrap.
  ExpectInvalid(
      RawFile(Header({Entry("w", "[1]", 18446744073709551612u, 18446744073709551615u, "I16")}), ""),
      {"hold 3 bytes but I16 [1] needs 2"});
  ExpectInvalid(
      RawFile(Header({Entry("w", "[1]", 18446744073709551612u, 18446744073709551614u, "I16")}), ""),
      {"outside the data section"});
}

TEST(SafetensorsBadInput, OverlappingOffsets) {
  ExpectInvalid(
      RawFile(Header({Entry("a", "[2]", 0, 8), Entry("b", "[2]", 4, 12)}), std::string(12, '\0')),
      {"tensor \"b\": data_offsets [4, 12) overlap tensor \"a\" at [0, 8)"});
}

TEST(SafetensorsBadInput, ZeroSizeTensorInsideAnother) {
  ExpectInvalid(
      RawFile(Header({Entry("a", "[2]", 0, 8), Entry("z", "[0]", 4, 4)}), std::string(8, '\0')),
      {"tensor \"z\"", "overlap tensor \"a\""});
}

TEST(SafetensorsBadInput, GapBetweenTensors) {
  ExpectInvalid(
      RawFile(Header({Entry("a", "[1]", 0, 4), Entry("b", "[1]", 8, 12)}), std::string(12, '\0')),
      {"tensor \"b\"", "gap of 4 bytes after offset 4"});
}

TEST(SafetensorsBadInput, GapBeforeFirstTensor) {
  ExpectInvalid(RawFile(Header({Entry("a", "[1]", 4, 8)}), std::string(8, '\0')),
                {"tensor \"a\"", "gap of 4 bytes after offset 0"});
}

TEST(SafetensorsBadInput, TrailingBytesAfterData) {
  ExpectInvalid(RawFile(Header({Entry("a", "[1]", 0, 4)}), std::string(6, '\0')),
                {"2 trailing bytes", "cover 4 of 6"});
  ExpectInvalid(RawFile("{}", "x"), {"1 trailing bytes"});
}

TEST(SafetensorsBadInput, MetadataNotAStringMap) {
  ExpectInvalid(RawFile(R"({"__metadata__":{"format":"pt","step":3}})", ""),
                {"__metadata__ key \"step\" has type number, must be a string"});
  ExpectInvalid(RawFile(R"({"__metadata__":["pt"]})", ""),
                {"__metadata__ has type array, must be an object of string to string"});
  ExpectInvalid(RawFile(R"({"__metadata__":{"a":"1","a":"2"}})", ""), {"repeated key \"a\""});
}

TEST(SafetensorsBadInput, LongNamesAreShortenedInMessages) {
  const std::string name(5000, 'n');
  const std::string message =
      ExpectInvalid(RawFile(Header({Entry(name, "[1]", 0, 2)}), "xx"), {"(5000 bytes)"});
  EXPECT_LT(message.size(), 600u);
}

TEST(SafetensorsBadInput, MissingFileIsNotFound) {
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> file =
      SafetensorsFile::Open(TestDir() / "absent.safetensors");
  EXPECT_EQ(file.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(file.status().message()), HasSubstr("absent.safetensors"));
}

TEST(SafetensorsBadInput, DirectoryIsNotAFile) {
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> file = SafetensorsFile::Open(TestDir());
  EXPECT_EQ(file.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(file.status().message()), HasSubstr("not a regular file"));
}

// What the reference accepts, we accept.
TEST(SafetensorsLenientInput, PaddingNullMetadataAndUnknownFields) {
  for (const std::string& header :
       {std::string("{}      "), std::string(R"({"__metadata__":null})"),
        R"({"w":{"dtype":"U8","shape":[2],"data_offsets":[0,2],"extra":true}})" +
            std::string(3, ' ')}) {
    const std::string data = header.find("\"w\"") == std::string::npos ? "" : "ab";
    absl::StatusOr<std::unique_ptr<SafetensorsFile>> file =
        SafetensorsFile::Parse(RawFile(header, data), "ok");
    ASSERT_TRUE(file.ok()) << header << ": " << file.status();
    EXPECT_TRUE((*file)->metadata().empty());
  }
}

TEST(SafetensorsLenientInput, TensorsComeInDataOrderNotHeaderOrder) {
  const std::string header = Header({Entry("second", "[1]", 4, 8), Entry("z0", "[0]", 0, 0),
                                     Entry("first", "[1]", 0, 4), Entry("a0", "[0]", 0, 0)});
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> file =
      SafetensorsFile::Parse(RawFile(header, std::string(8, '\0')), "ok");
  ASSERT_TRUE(file.ok()) << file.status();
  std::vector<std::string> names;
  for (const TensorView& t : (*file)->tensors()) names.push_back(t.name);
  // Zero-size tensors at the same offset keep their header order (z0 before a0).
  EXPECT_THAT(names, ::testing::ElementsAre("z0", "a0", "first", "second"));
}

}  // namespace
}  // namespace rlhf::io
