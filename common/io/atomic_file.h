#pragma once

#include <cstddef>
#include <filesystem>
#include <memory>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace rlhf::io {

// Writes a file so that readers see either the old contents or the complete new ones:
// data goes to "<path>.tmp", is fsync'ed, renamed over `path`, and the directory is
// fsync'ed so the rename survives a crash. Dropping the writer before Commit() removes
// the temporary file. Not thread-safe; one writer per path at a time.
class AtomicFileWriter {
 public:
  static absl::StatusOr<std::unique_ptr<AtomicFileWriter>> Create(std::filesystem::path path);

  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;
  ~AtomicFileWriter();

  absl::Status Append(const void* data, size_t size);
  absl::Status Append(std::string_view data) { return Append(data.data(), data.size()); }

  // Makes the file visible at `path`. The writer is finished afterwards, whatever the result.
  absl::Status Commit();

 private:
  AtomicFileWriter(std::filesystem::path path, std::filesystem::path tmp_path, int fd)
      : path_(std::move(path)), tmp_path_(std::move(tmp_path)), fd_(fd) {}
  void Abandon();

  std::filesystem::path path_;
  std::filesystem::path tmp_path_;
  int fd_ = -1;  // -1 once committed or abandoned
};

// fsyncs the directory holding `path`, so a rename or creation there survives a crash
// (POSIX persists a directory entry only through fsync on the directory itself).
absl::Status SyncParentDirectory(const std::filesystem::path& path);

// Convenience: the whole of `contents` written atomically to `path`.
absl::Status WriteFileAtomically(const std::filesystem::path& path, std::string_view contents);

}  // namespace rlhf::io
