#pragma once
// Splits a Jinja template into text and the tokens of its tags, as Hugging Face renders
// chat templates: trim_blocks and lstrip_blocks on, "-" strips whitespace, "+" keeps it.
// Comments are dropped (their whitespace rules still apply).

#include <string>
#include <vector>

namespace rlhf::chat {

struct Token {
  enum class Kind {
    kText,       // literal output
    kExprOpen,   // {{
    kExprClose,  // }}
    kStmtOpen,   // {%
    kStmtClose,  // %}
    kName,       // identifiers and keywords
    kString,     // a string literal, unescaped
    kInt,
    kFloat,
    kOperator,  // + - * / // % ** ~ == != < <= > >= ( ) [ ] { } , . : | =
    kEnd,
  };
  Kind kind;
  std::string text;
  int line;
};

// The tokens of `source`, ending with kEnd. Throws JinjaError naming the line of an
// unterminated tag or string, or a character no token starts with.
std::vector<Token> Tokenize(const std::string& source);

}  // namespace rlhf::chat
