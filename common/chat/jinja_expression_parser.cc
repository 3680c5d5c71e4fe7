#include "common/chat/jinja_expression_parser.h"

#include <charconv>
#include <cstdlib>
#include <string>
#include <utility>

namespace rlhf::chat {

ExprPtr ExpressionParser::TupleOrExpression() {
  ExprPtr first = Expression();
  if (!IsOperator(Peek(), ",")) return first;
  auto tuple = MakeExpr(Expr::Kind::kList, first->line);
  tuple->args.push_back(std::move(first));
  while (Accept(",")) tuple->args.push_back(Expression());
  return tuple;
}

ExprPtr ExpressionParser::Conditional(bool allow_if) {
  NestingGuard guard(this);
  ExprPtr value = Or();
  while (allow_if && AcceptName("if")) {
    auto node = MakeExpr(Expr::Kind::kConditional, value->line);
    node->a = std::move(value);
    node->b = Or();
    if (AcceptName("else")) node->c = Conditional(true);
    value = std::move(node);
  }
  return value;
}

ExprPtr ExpressionParser::Binary(std::string op, ExprPtr a, ExprPtr b) {
  auto node = MakeExpr(Expr::Kind::kBinary, a->line);
  node->name = std::move(op);
  node->a = std::move(a);
  node->b = std::move(b);
  return node;
}

ExprPtr ExpressionParser::Or() {
  ExprPtr value = And();
  while (AcceptName("or")) value = Binary("or", std::move(value), And());
  return value;
}

ExprPtr ExpressionParser::And() {
  ExprPtr value = Not();
  while (AcceptName("and")) value = Binary("and", std::move(value), Not());
  return value;
}

ExprPtr ExpressionParser::Not() {
  NestingGuard guard(this);
  if (IsName(Peek(), "not")) {
    const int line = Next().line;
    auto node = MakeExpr(Expr::Kind::kUnary, line);
    node->name = "not";
    node->a = Not();
    return node;
  }
  return Compare();
}

ExprPtr ExpressionParser::Compare() {
  ExprPtr value = Math1();
  while (true) {
    const Token& t = Peek();
    if (t.kind == TK::kOperator && (t.text == "==" || t.text == "!=" || t.text == "<" ||
                                    t.text == "<=" || t.text == ">" || t.text == ">=")) {
      Next();
      value = Binary(t.text, std::move(value), Math1());
    } else if (AcceptName("in")) {
      value = Binary("in", std::move(value), Math1());
    } else if (IsName(t, "not") && IsName(Peek(1), "in")) {
      Next();
      Next();
      value = Binary("not in", std::move(value), Math1());
    } else {
      return value;
    }
  }
}

template <typename Operand>
ExprPtr ExpressionParser::LeftAssociative(std::initializer_list<const char*> ops, Operand operand) {
  ExprPtr value = (this->*operand)();
  while (true) {
    bool matched = false;
    for (const char* op : ops) {
      if (IsOperator(Peek(), op)) {
        Next();
        value = Binary(op, std::move(value), (this->*operand)());
        matched = true;
        break;
      }
    }
    if (!matched) return value;
  }
}

ExprPtr ExpressionParser::Math1() { return LeftAssociative({"+", "-"}, &ExpressionParser::Concat); }
ExprPtr ExpressionParser::Concat() { return LeftAssociative({"~"}, &ExpressionParser::Math2); }
ExprPtr ExpressionParser::Math2() {
  return LeftAssociative({"*", "/", "//", "%"}, &ExpressionParser::Pow);
}
ExprPtr ExpressionParser::Pow() {
  return LeftAssociative({"**"}, &ExpressionParser::UnaryWithFilters);
}

ExprPtr ExpressionParser::UnaryWithFilters() { return Filters(Unary()); }

ExprPtr ExpressionParser::Unary() {
  NestingGuard guard(this);
  if (IsOperator(Peek(), "-") || IsOperator(Peek(), "+")) {
    const Token& t = Next();
    auto node = MakeExpr(Expr::Kind::kUnary, t.line);
    node->name = t.text;
    node->a = Unary();
    return node;
  }
  return Postfix(Primary());
}

ExprPtr ExpressionParser::Primary() {
  const Token& t = Next();
  auto literal = [&](Value v) {
    auto node = MakeExpr(Expr::Kind::kLiteral, t.line);
    node->literal = std::move(v);
    return node;
  };
  switch (t.kind) {
    case TK::kString: {
      std::string s = t.text;
      while (Peek().kind == TK::kString) s += Next().text;  // 'a' 'b' is 'ab'
      return literal(Value::String(std::move(s)));
    }
    case TK::kInt: {
      int64_t value = 0;
      const char* end = t.text.data() + t.text.size();
      const auto parsed = std::from_chars(t.text.data(), end, value);
      if (parsed.ec != std::errc() || parsed.ptr != end) {
        Fail(t.line, "integer literal out of range: " + t.text.substr(0, 40));
      }
      return literal(Value::Int(value));
    }
    case TK::kFloat:
      return literal(Value::Float(std::strtod(t.text.c_str(), nullptr)));
    case TK::kName:
      if (t.text == "true" || t.text == "True") return literal(Value::Bool(true));
      if (t.text == "false" || t.text == "False") return literal(Value::Bool(false));
      if (t.text == "none" || t.text == "None") return literal(Value::None());
      {
        auto node = MakeExpr(Expr::Kind::kName, t.line);
        node->name = t.text;
        return node;
      }
    case TK::kOperator:
      if (t.text == "(") {
        if (Accept(")")) return MakeExpr(Expr::Kind::kList, t.line);  // ()
        ExprPtr inner = Expression();
        if (IsOperator(Peek(), ",")) {
          auto tuple = MakeExpr(Expr::Kind::kList, t.line);
          tuple->args.push_back(std::move(inner));
          while (Accept(",") && !IsOperator(Peek(), ")")) tuple->args.push_back(Expression());
          inner = std::move(tuple);
        }
        ExpectOperator(")");
        return inner;
      }
      if (t.text == "[") {
        auto list = MakeExpr(Expr::Kind::kList, t.line);
        while (!Accept("]")) {
          list->args.push_back(Expression());
          if (!Accept(",")) {
            ExpectOperator("]");
            break;
          }
        }
        return list;
      }
      if (t.text == "{") {
        auto dict = MakeExpr(Expr::Kind::kDict, t.line);
        while (!Accept("}")) {
          dict->args.push_back(Expression());
          ExpectOperator(":");
          dict->args.push_back(Expression());
          if (!Accept(",")) {
            ExpectOperator("}");
            break;
          }
        }
        return dict;
      }
      break;
    default:
      break;
  }
  Fail(t.line, "unexpected " + Describe(t) + " in an expression");
}

ExprPtr ExpressionParser::Postfix(ExprPtr value) {
  while (true) {
    if (Accept(".")) {
      auto node = MakeExpr(Expr::Kind::kAttribute, value->line);
      const Token& t = Next();
      if (t.kind != TK::kName && t.kind != TK::kInt) Fail(t.line, "expected an attribute name");
      node->name = t.text;
      node->a = std::move(value);
      value = std::move(node);
    } else if (Accept("[")) {
      value = Subscript(std::move(value));
    } else if (IsOperator(Peek(), "(")) {
      Next();
      auto node = MakeExpr(Expr::Kind::kCall, value->line);
      node->a = std::move(value);
      Arguments(node.get());
      value = std::move(node);
    } else {
      return value;
    }
  }
}

ExprPtr ExpressionParser::Subscript(ExprPtr value) {
  auto node = MakeExpr(Expr::Kind::kItem, value->line);
  node->a = std::move(value);
  ExprPtr parts[3];
  int part = 0;
  bool slice = false;
  while (true) {
    if (Accept("]")) break;
    if (Accept(":")) {
      slice = true;
      if (++part > 2) Fail(Peek().line, "too many ':' in a slice");
      continue;
    }
    if (parts[part]) Fail(Peek().line, "expected ']' or ':'");
    parts[part] = Expression();
  }
  if (slice) {
    node->kind = Expr::Kind::kSlice;
    node->b = std::move(parts[0]);
    node->c = std::move(parts[1]);
    node->d = std::move(parts[2]);
  } else {
    if (!parts[0]) Fail(node->line, "empty subscript");
    node->b = std::move(parts[0]);
  }
  return node;
}

void ExpressionParser::Arguments(Expr* node) {
  while (!Accept(")")) {
    if (Peek().kind == TK::kName && IsOperator(Peek(1), "=")) {
      std::string key = Next().text;
      Next();
      node->kwargs.emplace_back(std::move(key), Expression());
    } else {
      node->args.push_back(Expression());
    }
    if (!Accept(",")) {
      ExpectOperator(")");
      return;
    }
  }
}

ExprPtr ExpressionParser::Filters(ExprPtr value) {
  while (true) {
    if (Accept("|")) {
      auto node = MakeExpr(Expr::Kind::kFilter, value->line);
      node->name = Expect(TK::kName, "a filter name").text;
      node->a = std::move(value);
      if (Accept("(")) Arguments(node.get());
      value = std::move(node);
    } else if (AcceptName("is")) {
      auto node = MakeExpr(Expr::Kind::kTest, value->line);
      node->negated = AcceptName("not");
      const Token& name = Next();
      if (name.kind != TK::kName &&
          !(name.kind == TK::kOperator && (name.text == "==" || name.text == "!="))) {
        Fail(name.line, "expected a test name after 'is'");
      }
      node->name = name.text;
      node->a = std::move(value);
      if (Accept("(")) {
        Arguments(node.get());
      } else if (StartsTestArgument(Peek())) {
        node->args.push_back(Postfix(Primary()));
      }
      value = std::move(node);
    } else {
      return value;
    }
  }
}

bool ExpressionParser::StartsTestArgument(const Token& t) {
  if (t.kind == TK::kString || t.kind == TK::kInt || t.kind == TK::kFloat) return true;
  if (t.kind == TK::kOperator) return t.text == "[" || t.text == "{";
  return t.kind == TK::kName && t.text != "else" && t.text != "or" && t.text != "and" &&
         t.text != "if" && t.text != "in" && t.text != "not" && t.text != "is";
}

}  // namespace rlhf::chat
