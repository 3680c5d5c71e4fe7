// Attribute access: dict keys and the str and dict methods chat templates call.

#include <string>
#include <utility>

#include "common/chat/jinja_budget.h"
#include "common/chat/jinja_builtins.h"

namespace rlhf::chat {
namespace {

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

std::string RequireString(const Value& v, const std::string& what) {
  if (!v.is_string()) throw JinjaError(what + " needs a string, not " + v.TypeName());
  return v.AsString();
}

// Python's str.split(sep=None, maxsplit=-1).
Value Split(const std::string& s, const Value& sep, const Value& max_split) {
  int64_t limit = max_split.kind() == Value::Kind::kInt ? max_split.AsInt() : -1;
  ValueList parts;
  if (sep.is_undefined() || sep.is_none()) {
    size_t i = 0;
    while (true) {
      while (i < s.size() && IsSpace(s[i])) ++i;
      if (i >= s.size()) break;
      if (limit == 0) {
        size_t end = s.size();
        while (end > i && IsSpace(s[end - 1])) --end;
        parts.push_back(Value::String(s.substr(i, end - i)));
        break;
      }
      size_t j = i;
      while (j < s.size() && !IsSpace(s[j])) ++j;
      parts.push_back(Value::String(s.substr(i, j - i)));
      --limit;
      i = j;
    }
    return Value::List(std::move(parts));
  }
  const std::string delimiter = RequireString(sep, "split");
  if (delimiter.empty()) throw JinjaError("split: empty separator");
  size_t start = 0;
  while (true) {
    const size_t at = limit == 0 ? std::string::npos : s.find(delimiter, start);
    if (at == std::string::npos) break;
    parts.push_back(Value::String(s.substr(start, at - start)));
    start = at + delimiter.size();
    --limit;
  }
  parts.push_back(Value::String(s.substr(start)));
  return Value::List(std::move(parts));
}

bool AffixMatches(const std::string& s, const Value& affix, bool prefix) {
  auto one = [&](const Value& v) {
    const std::string a = RequireString(v, prefix ? "startswith" : "endswith");
    return s.size() >= a.size() && s.compare(prefix ? 0 : s.size() - a.size(), a.size(), a) == 0;
  };
  if (affix.is_list()) {
    for (const Value& v : affix.AsList()) {
      if (one(v)) return true;
    }
    return false;
  }
  return one(affix);
}

std::string MapAscii(std::string s, int (*fn)(int)) {
  for (char& c : s) c = static_cast<char>(fn(static_cast<unsigned char>(c)));
  return s;
}

Value StringMethod(const std::string& s, const std::string& name, ValueList& args, Kwargs& kwargs) {
  ChargeWork(static_cast<int64_t>(s.size() / 64 + 1));
  auto arg = [&](size_t i, const char* key) -> const Value& { return Arg(args, kwargs, i, key); };
  if (name == "strip") return Value::String(StripChars(s, arg(0, "chars"), true, true));
  if (name == "lstrip") return Value::String(StripChars(s, arg(0, "chars"), true, false));
  if (name == "rstrip") return Value::String(StripChars(s, arg(0, "chars"), false, true));
  if (name == "split") return Split(s, arg(0, "sep"), arg(1, "maxsplit"));
  if (name == "startswith") return Value::Bool(AffixMatches(s, arg(0, "prefix"), true));
  if (name == "endswith") return Value::Bool(AffixMatches(s, arg(0, "suffix"), false));
  if (name == "upper") return Value::String(MapAscii(s, ::toupper));
  if (name == "lower") return Value::String(MapAscii(s, ::tolower));
  if (name == "replace") {
    return ApplyFilter("replace", Value::String(s), {arg(0, "old"), arg(1, "new")},
                       {{"count", arg(2, "count")}});
  }
  if (name == "title" || name == "capitalize") return ApplyFilter(name, Value::String(s), {}, {});
  if (name == "find") {
    const size_t at = s.find(RequireString(arg(0, "sub"), "find"));
    return Value::Int(at == std::string::npos ? -1 : static_cast<int64_t>(at));
  }
  if (name == "count") {
    const std::string sub = RequireString(arg(0, "sub"), "count");
    int64_t n = 0;
    for (size_t at = s.find(sub); !sub.empty() && at != std::string::npos;
         at = s.find(sub, at + sub.size())) {
      ++n;
    }
    return Value::Int(n);
  }
  if (name == "join") return ApplyFilter("join", arg(0, "iterable"), {Value::String(s)}, {});
  throw JinjaError("strings have no method '" + name + "' here");  // unreachable: IsStringMethod
}

Value DictMethod(const Value& dict, const std::string& name, ValueList& args, Kwargs& kwargs) {
  if (name == "items" || name == "keys" || name == "values") {
    ValueList out;
    for (const auto& [key, value] : dict.AsDict()) {
      if (name == "items")
        out.push_back(Value::List({Value::String(key), value}));
      else if (name == "keys")
        out.push_back(Value::String(key));
      else
        out.push_back(value);
    }
    return Value::List(std::move(out));
  }
  // get
  const Value& key = Arg(args, kwargs, 0, "key");
  const Value* found = key.is_string() ? dict.Find(key.AsString()) : nullptr;
  if (found != nullptr) return *found;
  const Value& fallback = Arg(args, kwargs, 1, "default");
  return fallback.is_undefined() ? Value::None() : fallback;
}

bool IsStringMethod(const std::string& name) {
  for (const char* method :
       {"strip", "lstrip", "rstrip", "split", "startswith", "endswith", "upper", "lower", "replace",
        "title", "capitalize", "find", "count", "join"}) {
    if (name == method) return true;
  }
  return false;
}

bool IsDictMethod(const std::string& name) {
  return name == "items" || name == "keys" || name == "values" || name == "get";
}

}  // namespace

const Value& Arg(const ValueList& args, const Kwargs& kwargs, size_t index, const char* name) {
  static const Value kUndefined;
  if (index < args.size()) return args[index];
  for (const auto& [key, value] : kwargs) {
    if (key == name) return value;
  }
  return kUndefined;
}

std::string StripChars(const std::string& s, const Value& chars, bool left, bool right) {
  const bool whitespace = chars.is_undefined() || chars.is_none();
  const std::string set = whitespace ? "" : RequireString(chars, "strip");
  auto strip = [&](char c) { return whitespace ? IsSpace(c) : set.find(c) != std::string::npos; };
  size_t begin = 0, end = s.size();
  while (left && begin < end && strip(s[begin])) ++begin;
  while (right && end > begin && strip(s[end - 1])) --end;
  return s.substr(begin, end - begin);
}

Value GetAttribute(const Value& object, const std::string& name) {
  if (object.is_dict() && !(IsDictMethod(name) && !object.is_namespace())) {
    const Value* found = object.Find(name);
    return found == nullptr ? Value() : *found;
  }
  if (object.is_dict()) {
    return Value::Callable([object, name](ValueList& args, Kwargs& kwargs) {
      return DictMethod(object, name, args, kwargs);
    });
  }
  if (object.is_string() && IsStringMethod(name)) {
    return Value::Callable([s = object.AsString(), name](ValueList& args, Kwargs& kwargs) {
      return StringMethod(s, name, args, kwargs);
    });
  }
  if (object.is_undefined())
    throw JinjaError("cannot read attribute '" + name + "' of an undefined value");
  return Value();  // jinja2: an attribute a value does not have is undefined
}

}  // namespace rlhf::chat
