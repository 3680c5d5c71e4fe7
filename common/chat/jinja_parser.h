#pragma once
// Parses the Jinja subset chat templates use:
//   statements  if/elif/else, for (tuple targets, "if" filter, else, loop.*), set (names,
//               tuples, namespace attributes, {% set x %}...{% endset %}), break/continue,
//               generation/endgeneration (transformers' marker: rendered as its body),
//               macro (positional and keyword parameters with defaults);
//   expressions literals, lists, tuples, dicts, names, attributes, subscripts and slices,
//               calls with keyword arguments, filters, tests, "a if b else c", and the
//               operators not/and/or, in/not in, comparisons, + - * / // % ** ~.
// Anything else (call, include, extends, raw, filter blocks...) is an error naming
// the construct and its line.

#include <string>
#include <vector>

#include "common/chat/jinja_ast.h"
#include "common/chat/jinja_lexer.h"

namespace rlhf::chat {

// Throws JinjaError ("line N: ...").
Body Parse(const std::vector<Token>& tokens);

}  // namespace rlhf::chat
