#pragma once
// A cursor over a template's tokens with the checks both parsers share. Throws JinjaError
// ("line N: ...").

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "common/chat/jinja_ast.h"
#include "common/chat/jinja_lexer.h"

namespace rlhf::chat {

class TokenStream {
 public:
  using TK = Token::Kind;
  explicit TokenStream(const std::vector<Token>& tokens) : tokens_(tokens) {}

  const Token& Peek(size_t ahead = 0) const {
    return tokens_[std::min(pos_ + ahead, tokens_.size() - 1)];
  }
  const Token& Next() {
    const Token& t = Peek();
    if (pos_ < tokens_.size() - 1) ++pos_;
    return t;
  }
  static bool IsOperator(const Token& t, const char* op) {
    return t.kind == TK::kOperator && t.text == op;
  }
  static bool IsName(const Token& t, const char* name) {
    return t.kind == TK::kName && t.text == name;
  }
  bool Accept(const char* op) {
    if (!IsOperator(Peek(), op)) return false;
    Next();
    return true;
  }
  bool AcceptName(const char* name) {
    if (!IsName(Peek(), name)) return false;
    Next();
    return true;
  }
  const Token& Expect(TK kind, const std::string& what) {
    if (Peek().kind != kind) Fail(Peek().line, "expected " + what + ", found " + Describe(Peek()));
    return Next();
  }
  void ExpectOperator(const char* op) {
    if (!Accept(op)) {
      Fail(Peek().line, std::string("expected '") + op + "', found " + Describe(Peek()));
    }
  }
  void ExpectName(const char* name) {
    if (!AcceptName(name)) {
      Fail(Peek().line, std::string("expected '") + name + "', found " + Describe(Peek()));
    }
  }

  static std::string Describe(const Token& t) {
    switch (t.kind) {
      case TK::kText:
        return "template text";
      case TK::kExprOpen:
        return "'{{'";
      case TK::kExprClose:
        return "'}}'";
      case TK::kStmtOpen:
        return "'{%'";
      case TK::kStmtClose:
        return "'%}'";
      case TK::kEnd:
        return "the end of the template";
      case TK::kString:
        return "a string";
      default:
        return "'" + t.text + "'";
    }
  }

  static ExprPtr MakeExpr(Expr::Kind kind, int line) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->line = line;
    return e;
  }
  static NodePtr MakeNode(Node::Kind kind, int line) {
    auto n = std::make_unique<Node>();
    n->kind = kind;
    n->line = line;
    return n;
  }

  // Nesting deeper than this (brackets, operators, blocks) is refused before the
  // recursive-descent parser could exhaust the stack.
  static constexpr int kMaxNesting = 200;
  class NestingGuard {
   public:
    explicit NestingGuard(TokenStream* stream) : stream_(stream) {
      if (++stream_->nesting_ > kMaxNesting) {
        Fail(stream_->Peek().line, "nested more than 200 levels deep");
      }
    }
    ~NestingGuard() { --stream_->nesting_; }

   private:
    TokenStream* stream_;
  };

  [[noreturn]] static void Fail(int line, const std::string& why) {
    throw JinjaError("line " + std::to_string(line) + ": " + why);
  }

 private:
  const std::vector<Token>& tokens_;
  size_t pos_ = 0;
  int nesting_ = 0;
};

}  // namespace rlhf::chat
