// Writer -> reader round trips, and byte-exact agreement with the reference writer.

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/io/safetensors.h"
#include "tests/unit/io/test_util.h"

namespace rlhf::io {
namespace {

using ::rlhf::io::testing::ReadBytes;
using ::rlhf::io::testing::TestDir;
using ::testing::HasSubstr;

// Owns the bytes behind a TensorView.
struct OwnedTensor {
  TensorView view;
  std::vector<uint8_t> bytes;
};

OwnedTensor MakeTensor(std::string name, DType dtype, std::vector<int64_t> shape, uint8_t seed) {
  OwnedTensor t;
  int64_t elements = 1;
  for (int64_t d : shape) elements *= d;
  t.bytes.resize(static_cast<size_t>(elements) * DTypeSize(dtype));
  for (size_t i = 0; i < t.bytes.size(); ++i) t.bytes[i] = static_cast<uint8_t>(seed + 7 * i);
  t.view = TensorView{std::move(name), dtype, std::move(shape), t.bytes.data(), t.bytes.size()};
  return t;
}

std::vector<TensorView> Views(const std::vector<OwnedTensor>& owned) {
  std::vector<TensorView> views;
  for (const OwnedTensor& t : owned) {
    views.push_back(t.view);
    views.back().data = t.bytes.data();  // `owned` may have been copied since MakeTensor
  }
  return views;
}

void ExpectSameTensors(const std::vector<TensorView>& actual,
                       const std::vector<OwnedTensor>& want) {
  ASSERT_EQ(actual.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    SCOPED_TRACE(want[i].view.name);
    EXPECT_EQ(actual[i].name, want[i].view.name);
    EXPECT_EQ(actual[i].dtype, want[i].view.dtype);
    EXPECT_EQ(actual[i].shape, want[i].view.shape);
    ASSERT_EQ(actual[i].nbytes, want[i].bytes.size());
    if (!want[i].bytes.empty()) {
      EXPECT_EQ(std::memcmp(actual[i].data, want[i].bytes.data(), want[i].bytes.size()), 0);
    }
  }
}

TEST(DType, NamesAndSizesRoundTrip) {
  const std::map<DType, std::pair<std::string, size_t>> expected = {
      {DType::kF64, {"F64", 8}},   {DType::kF32, {"F32", 4}}, {DType::kF16, {"F16", 2}},
      {DType::kBF16, {"BF16", 2}}, {DType::kI64, {"I64", 8}}, {DType::kI32, {"I32", 4}},
      {DType::kI16, {"I16", 2}},   {DType::kI8, {"I8", 1}},   {DType::kU8, {"U8", 1}},
      {DType::kBool, {"BOOL", 1}}};
  ASSERT_EQ(expected.size(), kAllDTypes.size());
  for (DType dtype : kAllDTypes) {
    EXPECT_EQ(DTypeName(dtype), expected.at(dtype).first);
    EXPECT_EQ(DTypeSize(dtype), expected.at(dtype).second);
    absl::StatusOr<DType> parsed = ParseDType(DTypeName(dtype));
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(*parsed, dtype);
  }
}

TEST(DType, UnknownNameIsInvalidArgument) {
  for (const char* name : {"f32", "U16", "F8_E4M3", ""}) {
    absl::StatusOr<DType> parsed = ParseDType(name);
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << name;
    EXPECT_THAT(std::string(parsed.status().message()), HasSubstr("unknown dtype"));
  }
}

TEST(SafetensorsRoundTrip, EveryDTypeWithScalarAndZeroSizeTensors) {
  std::vector<OwnedTensor> owned;
  uint8_t seed = 1;
  for (DType dtype : kAllDTypes) {
    const std::string name(DTypeName(dtype));
    owned.push_back(MakeTensor("t." + name + ".matrix", dtype, {2, 3}, seed++));
    owned.push_back(MakeTensor("t." + name + ".scalar", dtype, {}, seed++));
    owned.push_back(MakeTensor("t." + name + ".empty", dtype, {0, 4}, seed++));
    owned.push_back(MakeTensor("t." + name + ".vector", dtype, {5}, seed++));
  }
  const std::map<std::string, std::string> metadata = {{"format", "pt"}, {"note", "a \"q\"\n"}};
  const std::filesystem::path path = TestDir() / "model.safetensors";
  ASSERT_TRUE(WriteSafetensors(path, Views(owned), metadata).ok());
  EXPECT_FALSE(std::filesystem::exists(path.string() + ".tmp"));

  absl::StatusOr<std::unique_ptr<SafetensorsFile>> file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  ExpectSameTensors((*file)->tensors(), owned);
  EXPECT_EQ((*file)->metadata(), metadata);
  for (const OwnedTensor& t : owned) {
    const TensorView* found = (*file)->Find(t.view.name);
    ASSERT_NE(found, nullptr) << t.view.name;
    EXPECT_EQ(found->name, t.view.name);
  }
  EXPECT_EQ((*file)->Find("missing"), nullptr);

  // Parse of the same bytes agrees with the mmap path.
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> parsed =
      SafetensorsFile::Parse(ReadBytes(path), "copy");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ExpectSameTensors((*parsed)->tensors(), owned);

  // Serialize produces exactly what Write put on disk.
  absl::StatusOr<std::string> bytes = SerializeSafetensors(Views(owned), metadata);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  EXPECT_EQ(*bytes, ReadBytes(path));
}

TEST(SafetensorsRoundTrip, HeaderIsPaddedSoDataIsEightByteAligned) {
  for (size_t name_len = 1; name_len <= 9; ++name_len) {
    std::vector<OwnedTensor> owned = {MakeTensor(std::string(name_len, 'w'), DType::kF64, {3}, 0)};
    absl::StatusOr<std::string> bytes = SerializeSafetensors(Views(owned), {});
    ASSERT_TRUE(bytes.ok());
    uint64_t header_len = 0;
    std::memcpy(&header_len, bytes->data(), 8);  // little-endian host
    EXPECT_EQ(header_len % 8, 0u);
    EXPECT_EQ(bytes->size(), 8 + header_len + 24);
  }
}

// Byte-for-byte the expected outputs of the reference's own tests (safetensors/src/tensor.rs
// test_serialization and test_empty).
TEST(SafetensorsRoundTrip, MatchesReferenceWriterBytes) {
  const float values[] = {0, 1, 2, 3, 4, 5};
  TensorView t{"attn.0", DType::kF32, {1, 2, 3}, reinterpret_cast<const uint8_t*>(values), 24};
  absl::StatusOr<std::string> bytes = SerializeSafetensors({&t, 1}, {});
  ASSERT_TRUE(bytes.ok());
  const std::string header = R"({"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}})";
  ASSERT_EQ(header.size(), 64u);
  EXPECT_EQ(bytes->substr(0, 8), std::string("\x40\0\0\0\0\0\0\0", 8));
  EXPECT_EQ(bytes->substr(8, 64), header);

  absl::StatusOr<std::string> empty = SerializeSafetensors({}, {});
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(*empty, std::string("\x08\0\0\0\0\0\0\0{}      ", 16));

  absl::StatusOr<std::string> with_metadata = SerializeSafetensors({}, {{"framework", "pt"}});
  ASSERT_TRUE(with_metadata.ok());
  EXPECT_EQ(*with_metadata, std::string("\x28\0\0\0\0\0\0\0", 8) +
                                R"({"__metadata__":{"framework":"pt"}})" + std::string(5, ' '));
}

TEST(SafetensorsRoundTrip, NamesWithEscapesAndUnicodeSurvive) {
  std::vector<OwnedTensor> owned = {
      MakeTensor("a\"b\\c\td\x01", DType::kU8, {2}, 3),
      MakeTensor("\xC3\xA9t\xC3\xA9 \xF0\x9F\x98\x80", DType::kU8, {1}, 4)};
  absl::StatusOr<std::string> bytes = SerializeSafetensors(Views(owned), {});
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> file = SafetensorsFile::Parse(*bytes, "mem");
  ASSERT_TRUE(file.ok()) << file.status();
  ExpectSameTensors((*file)->tensors(), owned);
}

TEST(SafetensorsRoundTrip, OverwritesAnExistingFile) {
  const std::filesystem::path path = TestDir() / "w.safetensors";
  std::vector<OwnedTensor> first = {MakeTensor("a", DType::kF32, {4}, 1)};
  std::vector<OwnedTensor> second = {MakeTensor("b", DType::kI8, {3}, 2)};
  ASSERT_TRUE(WriteSafetensors(path, Views(first), {}).ok());
  ASSERT_TRUE(WriteSafetensors(path, Views(second), {}).ok());
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  ExpectSameTensors((*file)->tensors(), second);
}

TEST(SafetensorsWriter, RejectsSizeMismatch) {
  OwnedTensor t = MakeTensor("w", DType::kF32, {2, 2}, 0);
  t.view.nbytes = 12;
  absl::Status status = WriteSafetensors(TestDir() / "x.safetensors", {&t.view, 1}, {});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("tensor \"w\": nbytes is 12 but F32 [2, 2] needs 16"));
  EXPECT_THAT(std::string(status.message()), HasSubstr("x.safetensors"));
}

TEST(SafetensorsWriter, RejectsDuplicateAndReservedNamesAndNegativeDims) {
  OwnedTensor a = MakeTensor("a", DType::kU8, {1}, 0);
  std::vector<TensorView> dup = {a.view, a.view};
  EXPECT_THAT(std::string(SerializeSafetensors(dup, {}).status().message()),
              HasSubstr("appears twice"));

  TensorView reserved = a.view;
  reserved.name = "__metadata__";
  EXPECT_THAT(std::string(SerializeSafetensors({&reserved, 1}, {}).status().message()),
              HasSubstr("reserved"));

  TensorView negative{"n", DType::kU8, {-1}, nullptr, 0};
  absl::StatusOr<std::string> s = SerializeSafetensors({&negative, 1}, {});
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.status().message()), HasSubstr("negative dimension -1"));

  TensorView bad_utf8{"\xFF", DType::kU8, {0}, nullptr, 0};
  EXPECT_THAT(std::string(SerializeSafetensors({&bad_utf8, 1}, {}).status().message()),
              HasSubstr("not valid UTF-8"));
}

TEST(SafetensorsWriter, FailsCleanlyInAMissingDirectory) {
  OwnedTensor t = MakeTensor("w", DType::kU8, {1}, 0);
  absl::Status status =
      WriteSafetensors(TestDir() / "no_such_dir" / "x.safetensors", {&t.view, 1}, {});
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(status.message()), HasSubstr("x.safetensors.tmp"));
}

}  // namespace
}  // namespace rlhf::io
