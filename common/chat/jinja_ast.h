#pragma once
// The parsed form of a chat template: expressions and statements (see jinja_parser.h for
// the subset of Jinja they cover).

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/chat/jinja_value.h"

namespace rlhf::chat {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  enum class Kind {
    kLiteral,      // literal
    kName,         // name
    kList,         // [args...]; also tuples
    kDict,         // {kwargs' keys are exprs in args: key0, value0, key1, value1, ...}
    kAttribute,    // a.name
    kItem,         // a[b]
    kSlice,        // a[b:c:d], each of b, c, d may be null
    kCall,         // a(args..., kwargs...)
    kFilter,       // a | name(args..., kwargs...)
    kTest,         // a is [not] name(args...)   (negated)
    kUnary,        // name ("-", "+", "not") applied to a
    kBinary,       // a name b: + - * / // % ** ~ == != < <= > >= in, "not in", and, or
    kConditional,  // a if b else c (c may be null)
  };
  Kind kind;
  int line = 0;
  Value literal;
  std::string name;
  ExprPtr a, b, c, d;
  std::vector<ExprPtr> args;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  bool negated = false;
};

struct Node;
using NodePtr = std::unique_ptr<Node>;
using Body = std::vector<NodePtr>;

struct Node {
  enum class Kind {
    kText,    // text
    kOutput,  // {{ expr }}
    kIf,      // branches: (condition, body)...; else_body
    kFor,     // for targets in expr [if filter]: body [else: else_body]
    kSet,     // set targets = expr, or set name.attribute = expr, or {% set x %}body{% endset %}
    kBreak,
    kContinue,
    kScope,  // {% generation %}body{% endgeneration %}: rendered as its body
    kMacro,  // {% macro targets[0](params) %}body{% endmacro %}
  };
  Kind kind;
  int line = 0;
  std::string text;
  ExprPtr expr;
  ExprPtr filter;
  std::vector<std::string> targets;
  std::string attribute;                                // kSet on a namespace: targets[0].attribute
  std::vector<std::pair<std::string, ExprPtr>> params;  // kMacro: name, default (or null)
  std::vector<std::pair<ExprPtr, Body>> branches;
  Body body;
  Body else_body;
};

}  // namespace rlhf::chat
