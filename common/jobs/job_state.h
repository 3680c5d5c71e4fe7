#pragma once
// The job lifecycle: QUEUED -> RUNNING -> SUCCEEDED | FAILED | CANCELLED. Thread-safe.

#include <string_view>

#include "rlhf/v1/job.pb.h"

namespace rlhf::jobs {

// QUEUED -> RUNNING | CANCELLED | FAILED; RUNNING -> SUCCEEDED | FAILED | CANCELLED |
// QUEUED (requeued after an interrupted run); terminal states never change.
bool IsLegalTransition(v1::JobState from, v1::JobState to);
bool IsTerminal(v1::JobState state);
std::string_view JobStateName(v1::JobState state);  // "QUEUED", "RUNNING", ...

}  // namespace rlhf::jobs
