#include "common/chat/jinja_parser.h"

#include <initializer_list>
#include <string>
#include <utility>

#include "common/chat/jinja_expression_parser.h"

namespace rlhf::chat {
namespace {

class Parser : public ExpressionParser {
 public:
  using ExpressionParser::ExpressionParser;

  Body Template() {
    std::string end;
    return ParseBody({}, &end);
  }

 private:
  // Parses nodes until a {% name %} with a name in `ends` (returned in *end, tokens left
  // after the name) or the end of the template (only when `ends` is empty).
  Body ParseBody(std::initializer_list<const char*> ends, std::string* end) {
    NestingGuard guard(this);
    Body body;
    while (true) {
      const Token& t = Peek();
      if (t.kind == TK::kEnd) {
        if (ends.size() != 0) Fail(t.line, "missing {% " + std::string(*(ends.end() - 1)) + " %}");
        return body;
      }
      if (t.kind == TK::kText) {
        Next();
        if (!t.text.empty()) body.push_back(TextNode(t));
      } else if (t.kind == TK::kExprOpen) {
        Next();
        auto node = MakeNode(Node::Kind::kOutput, t.line);
        node->expr = Expression();
        Expect(TK::kExprClose, "}}");
        body.push_back(std::move(node));
      } else {
        Next();  // {%
        const Token& keyword = Expect(TK::kName, "a statement name");
        for (const char* e : ends) {
          if (keyword.text == e) {
            *end = keyword.text;
            return body;
          }
        }
        body.push_back(Statement(keyword));
      }
    }
  }

  NodePtr TextNode(const Token& t) {
    auto node = MakeNode(Node::Kind::kText, t.line);
    node->text = t.text;
    return node;
  }

  NodePtr Statement(const Token& keyword) {
    const std::string& k = keyword.text;
    if (k == "if") return If(keyword.line);
    if (k == "for") return For(keyword.line);
    if (k == "set") return Set(keyword.line);
    if (k == "break" || k == "continue") {
      Expect(TK::kStmtClose, "%}");
      return MakeNode(k == "break" ? Node::Kind::kBreak : Node::Kind::kContinue, keyword.line);
    }
    if (k == "macro") return Macro(keyword.line);
    if (k == "generation") {
      Expect(TK::kStmtClose, "%}");
      auto node = MakeNode(Node::Kind::kScope, keyword.line);
      std::string end;
      node->body = ParseBody({"endgeneration"}, &end);
      Expect(TK::kStmtClose, "%}");
      return node;
    }
    Fail(keyword.line, "unsupported template construct {% " + k + " %}");
  }

  NodePtr Macro(int line) {
    auto node = MakeNode(Node::Kind::kMacro, line);
    node->targets.push_back(Expect(TK::kName, "a macro name").text);
    ExpectOperator("(");
    while (!Accept(")")) {
      std::string name = Expect(TK::kName, "a parameter name").text;
      ExprPtr fallback;
      if (Accept("=")) fallback = Expression();
      node->params.emplace_back(std::move(name), std::move(fallback));
      if (!Accept(",")) {
        ExpectOperator(")");
        break;
      }
    }
    Expect(TK::kStmtClose, "%}");
    std::string end;
    node->body = ParseBody({"endmacro"}, &end);
    Expect(TK::kStmtClose, "%}");
    return node;
  }

  NodePtr If(int line) {
    auto node = MakeNode(Node::Kind::kIf, line);
    ExprPtr condition = Expression();
    while (true) {
      Expect(TK::kStmtClose, "%}");
      std::string end;
      Body body = ParseBody({"elif", "else", "endif"}, &end);
      node->branches.emplace_back(std::move(condition), std::move(body));
      if (end == "elif") {
        condition = Expression();
        continue;
      }
      if (end == "else") {
        Expect(TK::kStmtClose, "%}");
        node->else_body = ParseBody({"endif"}, &end);
      }
      Expect(TK::kStmtClose, "%}");
      return node;
    }
  }

  std::vector<std::string> Targets() {
    std::vector<std::string> targets;
    const bool parenthesised = Accept("(");
    do {
      targets.push_back(Expect(TK::kName, "a variable name").text);
    } while (Accept(","));
    if (parenthesised) ExpectOperator(")");
    return targets;
  }

  NodePtr For(int line) {
    auto node = MakeNode(Node::Kind::kFor, line);
    node->targets = Targets();
    ExpectName("in");
    node->expr = Conditional(/*allow_if=*/false);
    if (AcceptName("if")) node->filter = Expression();
    if (AcceptName("recursive")) Fail(line, "unsupported template construct: recursive for loops");
    Expect(TK::kStmtClose, "%}");
    std::string end;
    node->body = ParseBody({"else", "endfor"}, &end);
    if (end == "else") {
      Expect(TK::kStmtClose, "%}");
      node->else_body = ParseBody({"endfor"}, &end);
    }
    Expect(TK::kStmtClose, "%}");
    return node;
  }

  NodePtr Set(int line) {
    auto node = MakeNode(Node::Kind::kSet, line);
    node->targets.push_back(Expect(TK::kName, "a variable name").text);
    if (Accept(".")) {
      node->attribute = Expect(TK::kName, "an attribute name").text;
    } else {
      while (Accept(",")) node->targets.push_back(Expect(TK::kName, "a variable name").text);
    }
    if (Peek().kind == TK::kStmtClose && node->targets.size() == 1 && node->attribute.empty()) {
      Next();  // {% set x %}...{% endset %}
      std::string end;
      node->body = ParseBody({"endset"}, &end);
      Expect(TK::kStmtClose, "%}");
      return node;
    }
    ExpectOperator("=");
    node->expr = TupleOrExpression();
    Expect(TK::kStmtClose, "%}");
    return node;
  }
};

}  // namespace

Body Parse(const std::vector<Token>& tokens) { return Parser(tokens).Template(); }

}  // namespace rlhf::chat
