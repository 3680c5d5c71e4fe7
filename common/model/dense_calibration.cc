#include "common/model/dense_calibration.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <fcntl.h>
#include <sys/file.h>
#include <torch/version.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>
#include <tuple>

#include "common/model/dense.h"

namespace rlhf::model {
namespace {

namespace fs = std::filesystem;

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif

enum class Mode { kAuto, kAlways, kNever };

// How much faster than torch the kernel must be, measured alone, to be chosen. Alone, a
// weight that fits the caches favours the kernel (its loads stay in cache); in a decode step
// the weights stream from memory. Measured on an Intel Xeon (AVX-512, MKL tuned): GPT-2's
// 9 MB Conv1D weights measure 1.4-1.7x alone at 4 rows and lose 8% in the step; the 154 MB
// lm_head measures 1.5x at 8 rows and wins 17% in the step.
double RequiredSpeedup(const at::Tensor& weight) {
  return weight.numel() * 4 < (int64_t{32} << 20) ? 1.8 : 1.3;
}

Mode ModeFromEnvironment() {
  const char* value = std::getenv("RLHF_DENSE_FAST_PATH");
  const std::string mode = value == nullptr ? "" : value;
  if (mode == "always") return Mode::kAlways;
  if (mode == "never") return Mode::kNever;
  return Mode::kAuto;
}

int Bucket(int64_t rows) {
  int bucket = 0;
  while ((int64_t{1} << bucket) < rows && bucket + 1 < kDenseRowBuckets) ++bucket;
  return bucket;
}

double Seconds(const std::function<void()>& fn) {
  const auto start = std::chrono::steady_clock::now();
  fn();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

fs::path CacheFile() {
  constexpr char kName[] = "dense-calibration-v2.tsv";
  if (const char* dir = std::getenv("RLHF_CACHE_DIR"); dir != nullptr && *dir != '\0') {
    return fs::path(dir) / kName;
  }
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg != nullptr && *xdg != '\0') {
    return fs::path(xdg) / "rlhf" / kName;
  }
  if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0') {
    return fs::path(home) / ".cache" / "rlhf" / kName;
  }
  return {};
}

std::string BucketsString(const DenseBuckets& buckets) {
  std::string out;
  for (int i = 0; i < kDenseRowBuckets; ++i) {
    if (i) out += ',';
    out += buckets[i] ? '1' : '0';
  }
  return out;
}

bool ParseBuckets(const std::string& text, DenseBuckets* out) {
  if (text.size() != 2 * kDenseRowBuckets - 1) return false;
  for (int i = 0; i < kDenseRowBuckets; ++i) {
    const char c = text[2 * i];
    if (c != '0' && c != '1') return false;
    (*out)[i] = c == '1';
  }
  return true;
}

// The cached buckets for `prefix` (machine, threads, layout, shape) in the open file.
bool FindCached(int fd, const std::string& prefix, DenseBuckets* out) {
  std::string content;
  char buffer[4096];
  lseek(fd, 0, SEEK_SET);
  for (ssize_t n; (n = read(fd, buffer, sizeof(buffer))) > 0;) content.append(buffer, n);
  std::istringstream lines(content);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(prefix, 0) == 0 && ParseBuckets(line.substr(prefix.size()), out)) return true;
  }
  return false;
}

// Measured once per machine, thread count and shape: read under the file lock, else
// measured and appended while holding it. Measures without the cache when it is unusable,
// and in sanitized builds (their kernels run several times slower than the uninstrumented
// torch: their timings must not decide for this machine's normal builds).
DenseBuckets LoadOrMeasure(DenseLayout layout, const at::Tensor& weight, const at::Tensor& bias,
                           int threads) {
  if (kSanitized) return MeasureDenseBuckets(layout, weight, bias);
  const fs::path file = CacheFile();
  std::error_code error;
  if (file.empty() || (fs::create_directories(file.parent_path(), error), error)) {
    return MeasureDenseBuckets(layout, weight, bias);
  }
  const int fd = open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return MeasureDenseBuckets(layout, weight, bias);
  const int64_t in = weight.size(layout == DenseLayout::kLinear ? 1 : 0);
  const int64_t out = weight.size(layout == DenseLayout::kLinear ? 0 : 1);
  std::ostringstream prefix;
  prefix << DenseCalibrationMachineKey() << '\t' << threads << '\t'
         << (layout == DenseLayout::kLinear ? "linear" : "addmm") << '\t' << in << '\t' << out
         << '\t';
  DenseBuckets buckets{};
  if (flock(fd, LOCK_EX) == 0) {
    if (!FindCached(fd, prefix.str(), &buckets)) {
      buckets = MeasureDenseBuckets(layout, weight, bias);
      const std::string line = prefix.str() + BucketsString(buckets) + "\n";
      lseek(fd, 0, SEEK_END);
      // A short write leaves a line FindCached skips: measured again next time.
      [[maybe_unused]] const ssize_t written = write(fd, line.data(), line.size());
    }
    flock(fd, LOCK_UN);
  } else {
    buckets = MeasureDenseBuckets(layout, weight, bias);
  }
  close(fd);
  return buckets;
}

}  // namespace

std::string DenseCalibrationMachineKey() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line, model = "unknown CPU";
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("model name", 0) == 0 && line.find(':') != std::string::npos) {
      model = line.substr(line.find(':') + 2);
      break;
    }
  }
  std::ostringstream key;
  key << model << " x" << std::thread::hardware_concurrency() << " torch " << TORCH_VERSION;
  std::string out = key.str();
  std::replace(out.begin(), out.end(), '\t', ' ');
  return out;
}

DenseBuckets MeasureDenseBuckets(DenseLayout layout, const at::Tensor& weight,
                                 const at::Tensor& bias) {
  at::NoGradGuard no_grad;
  const bool linear = layout == DenseLayout::kLinear;
  const int64_t in = weight.size(linear ? 1 : 0);
  DenseBuckets out{};
  for (int bucket = 0; bucket < kDenseRowBuckets; ++bucket) {
    const at::Tensor x = at::randn({int64_t{1} << bucket, in}, weight.options());
    double ours = std::numeric_limits<double>::infinity(), theirs = ours;
    // Alternate the two sides so that a load spike hits both; round 0 warms up.
    for (int round = 0; round < 6; ++round) {
      const double a = Seconds(
          [&] { linear ? FewRowLinear(x, weight, bias) : FewRowAddmmInOut(x, weight, bias); });
      const double b = Seconds([&] {
        linear ? at::linear(x, weight, bias)
               : (bias.defined() ? at::addmm(bias, x, weight) : x.mm(weight));
      });
      if (round > 0) {
        ours = std::min(ours, a);
        theirs = std::min(theirs, b);
      }
    }
    out[bucket] = ours * RequiredSpeedup(weight) < theirs;
    if (std::getenv("RLHF_DENSE_CALIBRATION_LOG") != nullptr) {
      std::fprintf(stderr, "dense calibration %s %ldx%ld rows %ld: torch/kernel %.2f\n",
                   linear ? "linear" : "addmm", static_cast<long>(weight.size(0)),
                   static_cast<long>(weight.size(1)), static_cast<long>(x.size(0)), theirs / ours);
    }
  }
  return out;
}

bool FewRowKernelWins(DenseLayout layout, const at::Tensor& weight, const at::Tensor& bias,
                      int64_t rows) {
  static const Mode mode = ModeFromEnvironment();
  if (mode != Mode::kAuto) return mode == Mode::kAlways;
  using Key = std::tuple<int, DenseLayout, int64_t, int64_t>;
  static std::mutex mutex;
  static auto* table = new std::map<Key, DenseBuckets>();
  const Key key{at::get_num_threads(), layout, weight.size(0), weight.size(1)};
  std::lock_guard<std::mutex> lock(mutex);  // one measurement at a time, none twice
  auto it = table->find(key);
  if (it == table->end()) {
    it = table->emplace(key, LoadOrMeasure(layout, weight, bias, std::get<0>(key))).first;
  }
  return it->second[Bucket(rows)];
}

}  // namespace rlhf::model
