#pragma once
// The coordinator's training metrics on the process's Prometheus registry, labelled by
// job_id (STYLE.md: rlhf_<area>_<what>_<unit>, counters _total, durations _seconds
// histograms): reward mean/std, KL, KL coefficient, losses, entropy, clip fraction,
// approx KL, response length, weights version, tokens generated, and seconds per stage
// (generate, score, reference, evaluate, train, sync, iteration). Families are built once
// and each job's series cached. Thread-safe.

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

namespace rlhf::coordinator {

inline constexpr char kJobIdLabel[] = "job_id";
inline constexpr char kStageLabel[] = "stage";

class TrainingMetrics {
 public:
  explicit TrainingMetrics(prometheus::Registry& registry);

  // One iteration's metrics as the job loop reports them (names as in IterationReport).
  void Record(const std::string& job_id, const std::map<std::string, double>& metrics);
  // Removes every series of the job (JobMetrics calls it a grace period after the job ended).
  void RemoveJob(const std::string& job_id);

 private:
  struct GaugeSpec {
    const char* metric;  // the job loop's key
    prometheus::Family<prometheus::Gauge>* family;
  };
  std::vector<GaugeSpec> gauges_;
  prometheus::Family<prometheus::Counter>* tokens_;
  prometheus::Family<prometheus::Counter>* iterations_;
  prometheus::Family<prometheus::Histogram>* stage_seconds_;
  std::mutex mutex_;
};

}  // namespace rlhf::coordinator
