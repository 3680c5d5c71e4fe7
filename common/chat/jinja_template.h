#pragma once
// A Jinja chat template, parsed once and rendered per conversation, the way transformers
// renders `chat_template` (jinja2 ImmutableSandboxedEnvironment with trim_blocks and
// lstrip_blocks; globals raise_exception and strftime_now; a tojson that keeps non-ASCII
// text). The supported subset is listed in jinja_parser.h; no Python at run time.

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/chat/jinja_value.h"

namespace rlhf::chat {

struct Node;

class Template {
 public:
  // InvalidArgument "line N: ..." for a syntax error or an unsupported construct.
  static absl::StatusOr<Template> Parse(const std::string& source);

  // Renders with `variables` (messages, add_generation_prompt, bos_token, ...) on top of
  // the globals (range, namespace, dict, raise_exception, strftime_now). InvalidArgument
  // for raise_exception ("raise_exception: <the template's message>") and runtime errors.
  absl::StatusOr<std::string> Render(const ValueDict& variables) const;

  // strftime_now's clock, for tests (default: the local time now).
  void set_now_for_testing(std::function<std::string(const std::string& format)> now) {
    now_ = std::move(now);
  }

 private:
  std::shared_ptr<const std::vector<std::unique_ptr<Node>>> body_;
  std::function<std::string(const std::string& format)> now_;
};

}  // namespace rlhf::chat
