#include "common/io/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <utility>

#include "absl/strings/str_cat.h"

namespace rlhf::io {
namespace {

// Linux moves at most this much per write(2) call anyway; asking for less keeps each call
// interruptible and avoids size_t -> ssize_t surprises.
constexpr size_t kMaxWriteChunk = size_t{1} << 30;

absl::Status ErrnoError(int err, const std::filesystem::path& path, absl::string_view what) {
  return absl::ErrnoToStatus(err, absl::StrCat(path.string(), ": ", what));
}

}  // namespace

absl::StatusOr<std::unique_ptr<AtomicFileWriter>> AtomicFileWriter::Create(
    std::filesystem::path path) {
  std::filesystem::path tmp_path = path;
  tmp_path += ".tmp";
  const int fd = ::open(tmp_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoError(errno, tmp_path, "cannot create");
  return std::unique_ptr<AtomicFileWriter>(
      new AtomicFileWriter(std::move(path), std::move(tmp_path), fd));
}

AtomicFileWriter::~AtomicFileWriter() { Abandon(); }

void AtomicFileWriter::Abandon() {
  if (fd_ < 0) return;
  ::close(fd_);
  ::unlink(tmp_path_.c_str());
  fd_ = -1;
}

absl::Status AtomicFileWriter::Append(const void* data, size_t size) {
  if (fd_ < 0) {
    return absl::FailedPreconditionError(absl::StrCat(path_.string(), ": writer is finished"));
  }
  const auto* p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = ::write(fd_, p, std::min(size, kMaxWriteChunk));
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      Abandon();
      return ErrnoError(err, tmp_path_, "write failed");
    }
    p += n;
    size -= static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

absl::Status AtomicFileWriter::Commit() {
  if (fd_ < 0) {
    return absl::FailedPreconditionError(absl::StrCat(path_.string(), ": writer is finished"));
  }
  if (::fsync(fd_) != 0) {
    const int err = errno;
    Abandon();
    return ErrnoError(err, tmp_path_, "fsync failed");
  }
  // close() can report a deferred write error (e.g. on NFS), so it is checked too.
  const int rc = ::close(fd_);
  const int close_err = errno;
  fd_ = -1;
  if (rc != 0) {
    ::unlink(tmp_path_.c_str());
    return ErrnoError(close_err, tmp_path_, "close failed");
  }
  if (std::rename(tmp_path_.c_str(), path_.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp_path_.c_str());
    return ErrnoError(err, path_, absl::StrCat("cannot rename ", tmp_path_.string(), " to it"));
  }
  return SyncParentDirectory(path_);
}

// Makes a completed rename durable: POSIX says nothing persists a directory entry except
// fsync on the directory itself.
absl::Status SyncParentDirectory(const std::filesystem::path& path) {
  std::filesystem::path dir = path.parent_path();
  if (dir.empty()) dir = ".";
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoError(errno, dir, "cannot open directory to sync it");
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) return ErrnoError(err, dir, "cannot fsync directory");
  return absl::OkStatus();
}

absl::Status WriteFileAtomically(const std::filesystem::path& path, std::string_view contents) {
  absl::StatusOr<std::unique_ptr<AtomicFileWriter>> writer = AtomicFileWriter::Create(path);
  if (!writer.ok()) return writer.status();
  if (absl::Status s = (*writer)->Append(contents); !s.ok()) return s;
  return (*writer)->Commit();
}

}  // namespace rlhf::io
