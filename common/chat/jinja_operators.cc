#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "common/chat/jinja_budget.h"
#include "common/chat/jinja_builtins.h"

namespace rlhf::chat {
namespace {

[[noreturn]] void Unsupported(const std::string& op, const Value& a, const Value& b) {
  throw JinjaError("unsupported operand types for " + op + ": " + a.TypeName() + " and " +
                   b.TypeName());
}

// UTF-8 characters of s (an invalid byte stands alone).
std::vector<std::string> Characters(const std::string& s) {
  std::vector<std::string> out;
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
    if (i + n > s.size()) n = 1;
    out.push_back(s.substr(i, n));
    i += n;
  }
  return out;
}

void CheckSize(size_t count, size_t unit_bytes) {
  if (count > kMaxValueBytes / unit_bytes) throw JinjaError("a value exceeds 64 MiB");
  ChargeWork(static_cast<int64_t>(count * unit_bytes / 64 + 1));
}

int Compare(const std::string& op, const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    const double x = a.AsDouble(), y = b.AsDouble();
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (a.is_string() && b.is_string()) return a.AsString().compare(b.AsString());
  Unsupported(op, a, b);
}

bool Contains(const Value& container, const Value& item) {
  if (container.is_string()) {
    if (!item.is_string()) Unsupported("in", item, container);
    return container.AsString().find(item.AsString()) != std::string::npos;
  }
  if (container.is_list()) {
    ChargeWork(static_cast<int64_t>(container.AsList().size()));
    for (const Value& v : container.AsList()) {
      if (v.Equals(item)) return true;
    }
    return false;
  }
  if (container.is_dict()) return item.is_string() && container.Find(item.AsString()) != nullptr;
  if (container.is_undefined()) throw JinjaError("'in' on an undefined value");
  Unsupported("in", item, container);
}

Value Arithmetic(const std::string& op, const Value& a, const Value& b) {
  if (!a.is_number() || !b.is_number()) Unsupported(op, a, b);
  const bool ints = a.kind() == Value::Kind::kInt && b.kind() == Value::Kind::kInt;
  if (op == "/") {
    if (b.AsDouble() == 0) throw JinjaError("division by zero");
    return Value::Float(a.AsDouble() / b.AsDouble());
  }
  if (ints) {
    const int64_t x = a.AsInt(), y = b.AsInt();
    int64_t result = 0;
    bool overflow = false;
    if (op == "+") overflow = __builtin_add_overflow(x, y, &result);
    if (op == "-") overflow = __builtin_sub_overflow(x, y, &result);
    if (op == "*") overflow = __builtin_mul_overflow(x, y, &result);
    if (overflow) throw JinjaError("integer overflow");  // Python's ints are unbounded
    if (op == "+" || op == "-" || op == "*") return Value::Int(result);
    if (op == "//" || op == "%") {
      if (y == 0) throw JinjaError("integer division or modulo by zero");
      if (x == std::numeric_limits<int64_t>::min() && y == -1) throw JinjaError("integer overflow");
      int64_t q = x / y, r = x % y;
      if (r != 0 && ((r < 0) != (y < 0))) {  // Python floors
        --q;
        r += y;
      }
      return Value::Int(op == "//" ? q : r);
    }
    if (op == "**" && y >= 0) {  // by squaring: no loop of y steps
      int64_t power = 1, base = x;
      for (int64_t e = y; e > 0; e >>= 1) {
        if ((e & 1) && __builtin_mul_overflow(power, base, &power))
          throw JinjaError("integer overflow");
        if (e > 1 && __builtin_mul_overflow(base, base, &base))
          throw JinjaError("integer overflow");
      }
      return Value::Int(power);
    }
  }
  const double x = a.AsDouble(), y = b.AsDouble();
  if (op == "+") return Value::Float(x + y);
  if (op == "-") return Value::Float(x - y);
  if (op == "*") return Value::Float(x * y);
  if (op == "**") return Value::Float(std::pow(x, y));
  if (y == 0) throw JinjaError("float division or modulo by zero");
  const double floored = std::floor(x / y);
  return Value::Float(op == "//" ? floored : x - floored * y);
}

int64_t Index(const Value& key, size_t size) {
  if (key.kind() != Value::Kind::kInt && key.kind() != Value::Kind::kBool) return -1;
  int64_t i = key.kind() == Value::Kind::kBool ? key.AsBool() : key.AsInt();
  if (i < 0) i += static_cast<int64_t>(size);
  return i >= 0 && i < static_cast<int64_t>(size) ? i : -1;
}

}  // namespace

size_t CodePointCount(const std::string& s) { return Characters(s).size(); }

Value BinaryOp(const std::string& op, const Value& a, const Value& b) {
  if (op == "~") {
    std::string joined = a.Str() + b.Str();
    CheckSize(joined.size(), 1);
    return Value::String(std::move(joined));
  }
  if (op == "==") return Value::Bool(a.Equals(b));
  if (op == "!=") return Value::Bool(!a.Equals(b));
  if (op == "<") return Value::Bool(Compare(op, a, b) < 0);
  if (op == "<=") return Value::Bool(Compare(op, a, b) <= 0);
  if (op == ">") return Value::Bool(Compare(op, a, b) > 0);
  if (op == ">=") return Value::Bool(Compare(op, a, b) >= 0);
  if (op == "in") return Value::Bool(Contains(b, a));
  if (op == "not in") return Value::Bool(!Contains(b, a));
  if (op == "+") {
    if (a.is_string() && b.is_string()) {
      CheckSize(a.AsString().size() + b.AsString().size(), 1);
      return Value::String(a.AsString() + b.AsString());
    }
    if (a.is_list() && b.is_list()) {
      CheckSize(a.AsList().size() + b.AsList().size(), sizeof(Value));
      ValueList items = a.AsList();
      items.insert(items.end(), b.AsList().begin(), b.AsList().end());
      return Value::List(std::move(items));
    }
  }
  if (op == "*") {
    const Value* text = a.is_string() || a.is_list()   ? &a
                        : b.is_string() || b.is_list() ? &b
                                                       : nullptr;
    const Value& count = text == &a ? b : a;
    if (text != nullptr && count.kind() == Value::Kind::kInt) {
      const size_t unit =
          text->is_string() ? text->AsString().size() : text->AsList().size() * sizeof(Value);
      if (count.AsInt() > 0 && unit > 0) CheckSize(static_cast<size_t>(count.AsInt()), unit);
      if (text->is_string()) {
        std::string out;
        for (int64_t i = 0; i < count.AsInt(); ++i) out += text->AsString();
        return Value::String(out);
      }
      ValueList out;
      for (int64_t i = 0; i < count.AsInt(); ++i) {
        out.insert(out.end(), text->AsList().begin(), text->AsList().end());
      }
      return Value::List(std::move(out));
    }
  }
  return Arithmetic(op, a, b);
}

Value GetItem(const Value& object, const Value& key) {
  if (object.is_list()) {
    const int64_t i = Index(key, object.AsList().size());
    return i < 0 ? Value() : object.AsList()[static_cast<size_t>(i)];
  }
  if (object.is_string()) {
    const std::vector<std::string> chars = Characters(object.AsString());
    const int64_t i = Index(key, chars.size());
    return i < 0 ? Value() : Value::String(chars[static_cast<size_t>(i)]);
  }
  if (object.is_dict()) {
    if (!key.is_string()) return Value();
    const Value* found = object.Find(key.AsString());
    return found == nullptr ? Value() : *found;
  }
  if (object.is_undefined()) throw JinjaError("cannot index an undefined value with " + key.Repr());
  throw JinjaError("a " + object.TypeName() + " value cannot be indexed");
}

Value Slice(const Value& object, const Value& start, const Value& stop, const Value& step) {
  std::vector<Value> items;
  const bool text = object.is_string();
  if (text) {
    for (std::string& c : Characters(object.AsString()))
      items.push_back(Value::String(std::move(c)));
  } else if (object.is_list()) {
    items = object.AsList();
  } else {
    throw JinjaError("a " + object.TypeName() + " value cannot be sliced");
  }
  const int64_t n = static_cast<int64_t>(items.size());
  ChargeWork(n);
  auto bound = [&](const Value& v, int64_t fallback) -> int64_t {
    if (v.is_undefined() || v.is_none()) return fallback;
    if (v.kind() != Value::Kind::kInt) throw JinjaError("slice indices must be integers");
    return v.AsInt();
  };
  const int64_t s = bound(step, 1);
  if (s == 0) throw JinjaError("slice step cannot be zero");
  // Python's PySlice_AdjustIndices.
  auto adjust = [&](int64_t i, bool is_start) {
    if (i < 0) i += n;
    if (s > 0) return std::clamp<int64_t>(i, 0, n);
    (void)is_start;
    return std::clamp<int64_t>(i, -1, n - 1);
  };
  const int64_t begin =
      start.is_undefined() || start.is_none() ? (s > 0 ? 0 : n - 1) : adjust(bound(start, 0), true);
  const int64_t end =
      stop.is_undefined() || stop.is_none() ? (s > 0 ? n : -1) : adjust(bound(stop, 0), false);
  ValueList out;
  for (int64_t i = begin; s > 0 ? i < end : i > end;) {
    out.push_back(items[static_cast<size_t>(i)]);
    if ((s > 0 && i > end - s) || (s < 0 && i < end - s)) break;  // the next step passes end
    i += s;
  }
  if (!text) return Value::List(std::move(out));
  std::string joined;
  for (const Value& c : out) joined += c.AsString();
  return Value::String(std::move(joined));
}

ValueList Iterate(const Value& value) {
  if (value.is_list()) {
    ChargeWork(static_cast<int64_t>(value.AsList().size()));
    return value.AsList();
  }
  if (value.is_undefined()) return {};
  if (value.is_dict()) {
    ValueList keys;
    for (const auto& [key, v] : value.AsDict()) keys.push_back(Value::String(key));
    return keys;
  }
  if (value.is_string()) {
    ValueList chars;
    for (std::string& c : Characters(value.AsString()))
      chars.push_back(Value::String(std::move(c)));
    return chars;
  }
  throw JinjaError("a " + value.TypeName() + " value is not iterable");
}

}  // namespace rlhf::chat
