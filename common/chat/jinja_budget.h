#pragma once
// How much work one render may do, so that no template hangs its caller: every statement,
// loop iteration and value element a builtin visits charges units to the budget of the
// render running on this thread (Template::Render installs it); past the limit, JinjaError.
// Real chat templates use thousands of units; the limit is 10 million (about a second).

#include <cstdint>

namespace rlhf::chat {

inline constexpr int64_t kMaxWorkUnits = 10'000'000;

// Charges `units` to the current render's budget (no-op outside a render).
void ChargeWork(int64_t units);

// Installs a fresh budget for this thread's render; restores the previous one on exit.
class WorkBudget {
 public:
  explicit WorkBudget(int64_t limit = kMaxWorkUnits);
  ~WorkBudget();
  WorkBudget(const WorkBudget&) = delete;
  WorkBudget& operator=(const WorkBudget&) = delete;

 private:
  int64_t left_;
  WorkBudget* previous_;
  friend void ChargeWork(int64_t units);
};

}  // namespace rlhf::chat
