#include "common/chat/jinja_budget.h"

#include "common/chat/jinja_value.h"

namespace rlhf::chat {
namespace {

thread_local WorkBudget* current = nullptr;

}  // namespace

WorkBudget::WorkBudget(int64_t limit) : left_(limit), previous_(current) { current = this; }

WorkBudget::~WorkBudget() { current = previous_; }

void ChargeWork(int64_t units) {
  if (current == nullptr) return;
  current->left_ -= units;
  if (current->left_ < 0) {
    throw JinjaError("the template does too much work (over 10 million steps); is it looping?");
  }
}

}  // namespace rlhf::chat
