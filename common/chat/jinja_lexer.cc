#include "common/chat/jinja_lexer.h"

#include <cctype>
#include <string>

#include "common/chat/jinja_value.h"

namespace rlhf::chat {
namespace {

using Kind = Token::Kind;

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

// What surrounds one tag, for the whitespace pass.
struct TagMarks {
  size_t open_token;  // index of the tag's opening token (or of the text before a comment)
  bool block;         // {% or {#: trim_blocks and lstrip_blocks apply
  char open_mark;     // '-', '+' or 0 after the opening delimiter
  char close_mark;    // '-', '+' or 0 before the closing delimiter
};

class Lexer {
 public:
  // jinja2 drops one trailing newline (keep_trailing_newline=False).
  explicit Lexer(const std::string& source)
      : src_(source.size() >= 1 && source.back() == '\n'
                 ? source.substr(
                       0, source.size() -
                              (source.size() >= 2 && source[source.size() - 2] == '\r' ? 2 : 1))
                 : source) {}

  std::vector<Token> Run() {
    std::string text;
    while (pos_ < src_.size()) {
      if (src_[pos_] == '{' && pos_ + 1 < src_.size() &&
          (src_[pos_ + 1] == '{' || src_[pos_ + 1] == '%' || src_[pos_ + 1] == '#')) {
        FlushText(&text);
        Tag();
      } else {
        if (src_[pos_] == '\n') ++line_;
        text += src_[pos_++];
      }
    }
    FlushText(&text);
    ApplyWhitespaceControl();
    tokens_.push_back({Kind::kEnd, "", line_});
    return std::move(tokens_);
  }

 private:
  void FlushText(std::string* text) {
    // An empty text token still marks where a tag's neighbours are.
    tokens_.push_back({Kind::kText, *text, line_});
    text->clear();
  }

  char Mark() {
    if (pos_ < src_.size() && (src_[pos_] == '-' || src_[pos_] == '+')) return src_[pos_++];
    return 0;
  }

  void Tag() {
    const char type = src_[pos_ + 1];
    const int start_line = line_;
    pos_ += 2;
    TagMarks marks{tokens_.size(), type != '{', Mark(), 0};
    if (type == '#') {
      const size_t end = src_.find("#}", pos_);
      if (end == std::string::npos) Fail(start_line, "unterminated comment");
      for (size_t i = pos_; i < end; ++i) line_ += src_[i] == '\n';
      marks.close_mark =
          end > pos_ && (src_[end - 1] == '-' || src_[end - 1] == '+') ? src_[end - 1] : 0;
      pos_ = end + 2;
      marks.open_token = tokens_.size() - 1;  // the text before; the comment leaves no token
      comments_.push_back(marks);
      return;
    }
    tokens_.push_back({type == '{' ? Kind::kExprOpen : Kind::kStmtOpen, "", start_line});
    const std::string close = type == '{' ? "}}" : "%}";
    while (true) {
      while (pos_ < src_.size() && IsSpace(src_[pos_])) line_ += src_[pos_++] == '\n';
      if (pos_ >= src_.size()) Fail(start_line, "unterminated tag");
      for (char mark : {'-', '+'}) {
        if (src_[pos_] == mark && src_.compare(pos_ + 1, 2, close) == 0) {
          marks.close_mark = mark;
          ++pos_;
        }
      }
      if (src_.compare(pos_, 2, close) == 0) {
        pos_ += 2;
        tokens_.push_back({type == '{' ? Kind::kExprClose : Kind::kStmtClose, "", line_});
        tags_.push_back(marks);
        return;
      }
      ExpressionToken();
    }
  }

  void ExpressionToken() {
    const char c = src_[pos_];
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      size_t end = pos_;
      while (end < src_.size() &&
             (std::isalnum(static_cast<unsigned char>(src_[end])) || src_[end] == '_')) {
        ++end;
      }
      tokens_.push_back({Kind::kName, src_.substr(pos_, end - pos_), line_});
      pos_ = end;
    } else if (std::isdigit(static_cast<unsigned char>(c))) {
      size_t end = pos_;
      bool is_float = false;
      while (end < src_.size() &&
             (std::isdigit(static_cast<unsigned char>(src_[end])) || src_[end] == '_' ||
              (src_[end] == '.' && !is_float && end + 1 < src_.size() &&
               std::isdigit(static_cast<unsigned char>(src_[end + 1]))))) {
        is_float |= src_[end] == '.';
        ++end;
      }
      if (end < src_.size() && (src_[end] == 'e' || src_[end] == 'E')) {  // 1e-5, 2.5E3
        size_t exp = end + 1;
        if (exp < src_.size() && (src_[exp] == '+' || src_[exp] == '-')) ++exp;
        if (exp < src_.size() && std::isdigit(static_cast<unsigned char>(src_[exp]))) {
          while (exp < src_.size() && std::isdigit(static_cast<unsigned char>(src_[exp]))) ++exp;
          end = exp;
          is_float = true;
        }
      }
      std::string digits;
      for (size_t i = pos_; i < end; ++i) {
        if (src_[i] != '_') digits += src_[i];
      }
      tokens_.push_back({is_float ? Kind::kFloat : Kind::kInt, digits, line_});
      pos_ = end;
    } else if (c == '\'' || c == '"') {
      StringLiteral(c);
    } else {
      static const char* const kOperators[] = {"**", "//", "==", "!=", "<=", ">=", "+", "-", "*",
                                               "/",  "%",  "~",  "<",  ">",  "(",  ")", "[", "]",
                                               "{",  "}",  ",",  ".",  ":",  "|",  "="};
      for (const char* op : kOperators) {
        if (src_.compare(pos_, std::char_traits<char>::length(op), op) == 0) {
          tokens_.push_back({Kind::kOperator, op, line_});
          pos_ += std::char_traits<char>::length(op);
          return;
        }
      }
      Fail(line_, std::string("unexpected character '") + c + "' in a tag");
    }
  }

  void StringLiteral(char quote) {
    const int start_line = line_;
    std::string value;
    ++pos_;
    while (true) {
      if (pos_ >= src_.size()) Fail(start_line, "unterminated string literal");
      const char c = src_[pos_++];
      if (c == quote) break;
      if (c == '\n') ++line_;
      if (c != '\\' || pos_ >= src_.size()) {
        value += c;
        continue;
      }
      const char e = src_[pos_++];
      switch (e) {
        case 'n':
          value += '\n';
          break;
        case 't':
          value += '\t';
          break;
        case 'r':
          value += '\r';
          break;
        case '\\':
          value += '\\';
          break;
        case '\'':
          value += '\'';
          break;
        case '"':
          value += '"';
          break;
        case '\n':
          ++line_;
          break;  // a line continuation
        default:
          value += '\\';
          value += e;  // Python keeps unknown escapes as written
      }
    }
    tokens_.push_back({Kind::kString, value, start_line});
  }

  // Strips text around tags: "-" takes all whitespace on that side; otherwise a block tag
  // (and a comment) takes the newline right after it (trim_blocks) and the spaces and tabs
  // before it on its line (lstrip_blocks), unless marked "+".
  void ApplyWhitespaceControl() {
    auto text_before = [&](size_t open) -> Token* {
      return open > 0 && tokens_[open - 1].kind == Kind::kText ? &tokens_[open - 1] : nullptr;
    };
    auto text_after = [&](size_t from) -> Token* {
      for (size_t i = from; i < tokens_.size(); ++i) {
        if (tokens_[i].kind == Kind::kText) return &tokens_[i];
        if (tokens_[i].kind == Kind::kExprClose || tokens_[i].kind == Kind::kStmtClose) {
          return i + 1 < tokens_.size() && tokens_[i + 1].kind == Kind::kText ? &tokens_[i + 1]
                                                                              : nullptr;
        }
      }
      return nullptr;
    };
    auto strip = [&](const TagMarks& marks, Token* before, Token* after, bool at_template_start) {
      if (before != nullptr) {
        std::string& s = before->text;
        if (marks.open_mark == '-') {
          while (!s.empty() && IsSpace(s.back())) s.pop_back();
        } else if (marks.block && marks.open_mark != '+') {
          size_t i = s.size();
          while (i > 0 && (s[i - 1] == ' ' || s[i - 1] == '\t')) --i;
          if ((i > 0 && s[i - 1] == '\n') || (i == 0 && at_template_start)) s.resize(i);
        }
      }
      if (after != nullptr) {
        std::string& s = after->text;
        if (marks.close_mark == '-') {
          size_t i = 0;
          while (i < s.size() && IsSpace(s[i])) ++i;
          s.erase(0, i);
        } else if (marks.block && marks.close_mark != '+') {
          if (s.rfind("\r\n", 0) == 0)
            s.erase(0, 2);
          else if (!s.empty() && s[0] == '\n')
            s.erase(0, 1);
        }
      }
    };
    for (const TagMarks& marks : tags_) {
      strip(marks, text_before(marks.open_token), text_after(marks.open_token + 1),
            marks.open_token == 1);
    }
    for (const TagMarks& marks : comments_) {
      // The text before the comment is tokens_[open_token]; the text after is the next one.
      Token* before = &tokens_[marks.open_token];
      Token* after =
          marks.open_token + 1 < tokens_.size() && tokens_[marks.open_token + 1].kind == Kind::kText
              ? &tokens_[marks.open_token + 1]
              : nullptr;
      strip(marks, before, after, marks.open_token == 0);
    }
  }

  [[noreturn]] void Fail(int line, const std::string& why) {
    throw JinjaError("line " + std::to_string(line) + ": " + why);
  }

  const std::string src_;
  size_t pos_ = 0;
  int line_ = 1;
  std::vector<Token> tokens_;
  std::vector<TagMarks> tags_;
  std::vector<TagMarks> comments_;
};

}  // namespace

std::vector<Token> Tokenize(const std::string& source) { return Lexer(source).Run(); }

}  // namespace rlhf::chat
