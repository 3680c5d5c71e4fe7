#pragma once
// Jinja expressions (see jinja_parser.h), by precedence from loosest: "a if b else c", or,
// and, not, comparisons and in / not in, + -, ~, * / // %, **, unary - +, then filters
// (|name(args)) and tests (is [not] name(args)) on postfix primaries (.attribute,
// [subscript or slice], (call args, key=value)).

#include <initializer_list>
#include <vector>

#include "common/chat/jinja_ast.h"
#include "common/chat/jinja_token_stream.h"

namespace rlhf::chat {

class ExpressionParser : public TokenStream {
 public:
  using TokenStream::TokenStream;

  ExprPtr Expression() { return Conditional(/*allow_if=*/true); }
  // "a, b" as a tuple (for set).
  ExprPtr TupleOrExpression();
  // allow_if false: a for loop's iterable, where "if" starts the loop's filter.
  ExprPtr Conditional(bool allow_if);

 private:
  ExprPtr Binary(std::string op, ExprPtr a, ExprPtr b);
  ExprPtr Or();
  ExprPtr And();
  ExprPtr Not();
  ExprPtr Compare();
  template <typename Operand>
  ExprPtr LeftAssociative(std::initializer_list<const char*> ops, Operand operand);
  ExprPtr Math1();
  ExprPtr Concat();
  ExprPtr Math2();
  ExprPtr Pow();
  ExprPtr UnaryWithFilters();
  ExprPtr Unary();
  ExprPtr Primary();
  ExprPtr Postfix(ExprPtr value);
  ExprPtr Subscript(ExprPtr value);
  void Arguments(Expr* node);  // after "(": positional and keyword arguments up to ")"
  ExprPtr Filters(ExprPtr value);
  static bool StartsTestArgument(const Token& t);
};

}  // namespace rlhf::chat
