// jinja2's filters and tests (the ones chat templates use), with transformers' tojson.

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>
#include <string>
#include <utility>

#include "common/chat/jinja_budget.h"
#include "common/chat/jinja_builtins.h"

namespace rlhf::chat {
namespace {

int64_t IntArg(const Value& v, int64_t fallback) {
  if (v.is_undefined() || v.is_none()) return fallback;
  if (v.kind() == Value::Kind::kBool) return v.AsBool();
  if (v.kind() != Value::Kind::kInt) throw JinjaError("expected an integer, not " + v.TypeName());
  return v.AsInt();
}

const ValueList& RequireList(const std::string& filter, const Value& v, ValueList* storage) {
  if (v.is_list()) return v.AsList();
  *storage = Iterate(v);
  (void)filter;
  return *storage;
}

std::string Replace(const std::string& s, const std::string& from, const std::string& to,
                    int64_t count) {
  if (from.empty()) {
    std::string out;
    for (char c : s) out += to + c;  // Python inserts between every character and at both ends
    return out + to;
  }
  std::string out;
  size_t start = 0;
  for (size_t at = s.find(from); at != std::string::npos && count != 0;
       at = s.find(from, start), --count) {
    out += s.substr(start, at - start) + to;
    start = at + from.size();
  }
  return out + s.substr(start);
}

// selectattr / rejectattr / select / reject.
Value Select(const Value& value, ValueList args, bool by_attribute, bool keep_if) {
  ValueList storage;
  const ValueList& items = RequireList("select", value, &storage);
  std::string attribute;
  if (by_attribute) {
    if (args.empty() || !args[0].is_string())
      throw JinjaError("selectattr needs an attribute name");
    attribute = args[0].AsString();
    args.erase(args.begin());
  }
  std::string test;
  if (!args.empty()) {
    if (!args[0].is_string()) throw JinjaError("select: the test name must be a string");
    test = args[0].AsString();
    args.erase(args.begin());
  }
  ValueList out;
  for (const Value& item : items) {
    const Value subject = by_attribute ? GetAttribute(item, attribute) : item;
    const bool passes = test.empty() ? subject.Truthy() : ApplyTest(test, subject, args);
    if (passes == keep_if) out.push_back(item);
  }
  return Value::List(std::move(out));
}

std::string Indent(const std::string& s, const Value& width, bool first, bool blank) {
  const int64_t spaces = width.is_string() ? 0 : IntArg(width, 4);
  if (spaces < 0 || spaces > 1024) throw JinjaError("indent width must be in [0, 1024]");
  const std::string pad =
      width.is_string() ? width.AsString() : std::string(static_cast<size_t>(spaces), ' ');
  const size_t lines = static_cast<size_t>(std::count(s.begin(), s.end(), '\n')) + 1;
  if (pad.size() > 0 && lines > kMaxValueBytes / pad.size())
    throw JinjaError("a value exceeds 64 MiB");
  std::string out;
  size_t start = 0;
  bool first_line = true;
  while (start <= s.size()) {
    size_t end = s.find('\n', start);
    const bool last = end == std::string::npos;
    if (last) end = s.size();
    const std::string line = s.substr(start, end - start);
    const bool indent = first_line ? first : (blank || !line.empty());
    out += (indent ? pad : "") + line + (last ? "" : "\n");
    first_line = false;
    if (last) break;
    start = end + 1;
  }
  return out;
}

}  // namespace

Value ApplyFilter(const std::string& name, const Value& value, ValueList args, Kwargs kwargs) {
  if (value.is_string()) ChargeWork(static_cast<int64_t>(value.AsString().size() / 64 + 1));
  auto arg = [&](size_t i, const char* key) -> const Value& { return Arg(args, kwargs, i, key); };
  if (name == "trim") return Value::String(StripChars(value.Str(), arg(0, "chars"), true, true));
  if (name == "safe" || name == "string")
    return name == "safe" ? value : Value::String(value.Str());
  if (name == "upper" || name == "lower") {
    std::string s = value.Str();
    for (char& c : s) c = static_cast<char>(name == "upper" ? std::toupper(c) : std::tolower(c));
    return Value::String(s);
  }
  if (name == "capitalize" || name == "title") {
    std::string s = value.Str();
    bool start = true;
    for (char& c : s) {
      const unsigned char u = static_cast<unsigned char>(c);
      c = static_cast<char>(start ? std::toupper(u) : std::tolower(u));
      if (name == "title")
        start = !std::isalnum(u);
      else
        start = false;
    }
    return Value::String(s);
  }
  if (name == "length" || name == "count") {
    if (value.is_string())
      return Value::Int(static_cast<int64_t>(CodePointCount(value.AsString())));
    if (value.is_list()) return Value::Int(static_cast<int64_t>(value.AsList().size()));
    if (value.is_dict()) return Value::Int(static_cast<int64_t>(value.AsDict().size()));
    throw JinjaError("length of a " + value.TypeName() + " value");
  }
  if (name == "default" || name == "d") {
    const bool boolean = arg(1, "boolean").Truthy();
    if (value.is_undefined() || (boolean && !value.Truthy())) {
      const Value& fallback = arg(0, "default_value");
      return fallback.is_undefined() ? Value::String("") : fallback;
    }
    return value;
  }
  if (name == "tojson") {
    // transformers: json.dumps(x, ensure_ascii=False, indent=indent, sort_keys=sort_keys).
    return Value::String(
        value.ToJson(static_cast<int>(IntArg(arg(0, "indent"), -1)), arg(1, "sort_keys").Truthy()));
  }
  if (name == "join") {
    ValueList storage;
    const ValueList& items = RequireList(name, value, &storage);
    const std::string separator = arg(0, "d").is_undefined() ? "" : arg(0, "d").Str();
    const Value& attribute = arg(1, "attribute");
    std::string out;
    for (size_t i = 0; i < items.size(); ++i) {
      const Value item =
          attribute.is_string() ? GetAttribute(items[i], attribute.AsString()) : items[i];
      out += (i ? separator : "") + item.Str();
    }
    return Value::String(out);
  }
  if (name == "first" || name == "last") {
    ValueList storage;
    const ValueList& items = RequireList(name, value, &storage);
    if (items.empty()) return Value();
    return name == "first" ? items.front() : items.back();
  }
  if (name == "list") {
    ValueList storage;
    return Value::List(RequireList(name, value, &storage));
  }
  if (name == "reverse") {
    if (value.is_string()) return Slice(value, Value(), Value(), Value::Int(-1));
    ValueList items = Iterate(value);
    std::reverse(items.begin(), items.end());
    return Value::List(std::move(items));
  }
  if (name == "unique") {
    ValueList out;
    for (const Value& item : Iterate(value)) {
      ChargeWork(static_cast<int64_t>(out.size()));
      if (std::none_of(out.begin(), out.end(), [&](const Value& v) { return v.Equals(item); })) {
        out.push_back(item);
      }
    }
    return Value::List(std::move(out));
  }
  if (name == "items") {
    if (value.is_undefined()) return Value::List({});
    if (!value.is_dict()) throw JinjaError("items of a " + value.TypeName() + " value");
    return GetAttribute(value, "items").AsFunction()(args, kwargs);
  }
  if (name == "selectattr" || name == "rejectattr" || name == "select" || name == "reject") {
    return Select(value, std::move(args), name.size() > 6, name[0] == 's');
  }
  if (name == "map") {
    ValueList out;
    const Value& attribute = arg(99, "attribute");
    for (const Value& item : Iterate(value)) {
      if (attribute.is_string()) {
        Value v = GetAttribute(item, attribute.AsString());
        out.push_back(v.is_undefined() && !arg(99, "default").is_undefined() ? arg(99, "default")
                                                                             : v);
      } else {
        if (args.empty() || !args[0].is_string())
          throw JinjaError("map needs a filter name or attribute=");
        out.push_back(
            ApplyFilter(args[0].AsString(), item, ValueList(args.begin() + 1, args.end()), {}));
      }
    }
    return Value::List(std::move(out));
  }
  if (name == "replace") {
    const Value& count = arg(2, "count");
    return Value::String(Replace(value.Str(), arg(0, "old").Str(), arg(1, "new").Str(),
                                 count.is_undefined() || count.is_none() ? -1 : IntArg(count, -1)));
  }
  if (name == "int") {
    if (value.kind() == Value::Kind::kInt) return value;
    if (value.kind() == Value::Kind::kFloat) {
      const double d = std::trunc(value.AsDouble());
      if (!(d >= -9.2e18 && d <= 9.2e18)) throw JinjaError("int of an out-of-range float");
      return Value::Int(static_cast<int64_t>(d));
    }
    if (value.is_string()) {
      try {
        return Value::Int(std::stoll(value.AsString()));
      } catch (...) {
      }
    }
    return Value::Int(IntArg(arg(0, "default"), 0));
  }
  if (name == "float") {
    if (value.is_number()) return Value::Float(value.AsDouble());
    if (value.is_string()) {
      try {
        return Value::Float(std::stod(value.AsString()));
      } catch (...) {
      }
    }
    return arg(0, "default").is_undefined() ? Value::Float(0) : arg(0, "default");
  }
  if (name == "abs") {
    if (value.kind() == Value::Kind::kInt) {
      if (value.AsInt() == std::numeric_limits<int64_t>::min())
        throw JinjaError("integer overflow");
      return Value::Int(std::llabs(value.AsInt()));
    }
    if (value.is_number()) return Value::Float(std::fabs(value.AsDouble()));
    throw JinjaError("abs of a " + value.TypeName() + " value");
  }
  if (name == "round") {
    if (!value.is_number()) throw JinjaError("round of a " + value.TypeName() + " value");
    const double scale = std::pow(10.0, static_cast<double>(IntArg(arg(0, "precision"), 0)));
    return Value::Float(std::nearbyint(value.AsDouble() * scale) /
                        scale);  // Python round: half to even
  }
  if (name == "indent") {
    return Value::String(
        Indent(value.Str(), arg(0, "width"), arg(1, "first").Truthy(), arg(2, "blank").Truthy()));
  }
  throw JinjaError("unsupported filter '" + name + "'");
}

bool ApplyTest(const std::string& name, const Value& value, const ValueList& args) {
  auto other = [&]() -> const Value& {
    if (args.empty()) throw JinjaError("test '" + name + "' needs an argument");
    return args[0];
  };
  if (name == "defined") return !value.is_undefined();
  if (name == "undefined") return value.is_undefined();
  if (name == "none") return value.is_none();
  if (name == "string") return value.is_string();
  if (name == "number") return value.is_number();
  if (name == "integer") return value.kind() == Value::Kind::kInt;
  if (name == "float") return value.kind() == Value::Kind::kFloat;
  if (name == "boolean") return value.kind() == Value::Kind::kBool;
  if (name == "true" || name == "false") {
    return value.kind() == Value::Kind::kBool && value.AsBool() == (name == "true");
  }
  if (name == "mapping") return value.is_dict();
  if (name == "sequence") return value.is_list() || value.is_string() || value.is_dict();
  if (name == "iterable") return value.is_list() || value.is_string() || value.is_dict();
  if (name == "callable") return value.is_callable();
  if (name == "equalto" || name == "eq" || name == "==" || name == "sameas") {
    return value.Equals(other());
  }
  if (name == "ne" || name == "!=") return !value.Equals(other());
  if (name == "lt" || name == "le" || name == "gt" || name == "ge") {
    static const char* const kOps[][2] = {{"lt", "<"}, {"le", "<="}, {"gt", ">"}, {"ge", ">="}};
    for (const auto& op : kOps) {
      if (name == op[0]) return BinaryOp(op[1], value, other()).AsBool();
    }
  }
  if (name == "in") return BinaryOp("in", value, other()).AsBool();
  if (name == "odd" || name == "even") {
    if (value.kind() != Value::Kind::kInt) throw JinjaError("test '" + name + "' needs an integer");
    return (value.AsInt() % 2 != 0) == (name == "odd");
  }
  if (name == "divisibleby") {
    const Value& divisor = other();
    if (value.kind() != Value::Kind::kInt || divisor.kind() != Value::Kind::kInt ||
        divisor.AsInt() == 0) {
      throw JinjaError("test 'divisibleby' needs nonzero integers");
    }
    return value.AsInt() % divisor.AsInt() == 0;
  }
  if (name == "lower" || name == "upper") {
    const std::string s = value.Str();
    return std::all_of(s.begin(), s.end(), [&](char c) {
      return name == "lower" ? !std::isupper(static_cast<unsigned char>(c))
                             : !std::islower(static_cast<unsigned char>(c));
    });
  }
  throw JinjaError("unsupported test '" + name + "'");
}

}  // namespace rlhf::chat
