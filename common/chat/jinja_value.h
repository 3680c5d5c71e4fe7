#pragma once
// The values a chat template computes with: Jinja's (Python's) none, bools, ints, floats,
// strings, lists, insertion-ordered dicts, namespaces and callables, plus Undefined.
// Strings hold UTF-8 bytes. Lists and dicts are shared (a namespace is assigned through).
//
// Inside the engine errors are thrown as JinjaError; the public API (Template) turns them
// into absl::Status, so nothing throws out of this library.

#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace rlhf::chat {

class JinjaError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Value;
using ValueList = std::vector<Value>;
using ValueDict = std::vector<std::pair<std::string, Value>>;  // insertion order, like Python
using Kwargs = std::vector<std::pair<std::string, Value>>;
using Function = std::function<Value(ValueList& args, Kwargs& kwargs)>;

class Value {
 public:
  enum class Kind { kUndefined, kNone, kBool, kInt, kFloat, kString, kList, kDict, kFunction };

  Value() = default;  // Undefined
  static Value None();
  static Value Bool(bool b);
  static Value Int(int64_t i);
  static Value Float(double d);
  static Value String(std::string s);
  static Value List(ValueList items);
  static Value Dict(ValueDict items, bool is_namespace = false);
  static Value Callable(Function fn);
  // JSON null/bool/number/string/array/object; integers stay integers. JinjaError past
  // kMaxDepth levels of nesting.
  static Value FromJson(const nlohmann::ordered_json& json, int depth = 0);

  Kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == Kind::kUndefined; }
  bool is_none() const { return kind_ == Kind::kNone; }
  bool is_string() const { return kind_ == Kind::kString; }
  bool is_number() const { return kind_ == Kind::kInt || kind_ == Kind::kFloat; }
  bool is_list() const { return kind_ == Kind::kList; }
  bool is_dict() const { return kind_ == Kind::kDict; }
  bool is_namespace() const { return kind_ == Kind::kDict && namespace_; }
  bool is_callable() const { return kind_ == Kind::kFunction; }

  bool AsBool() const { return b_; }
  int64_t AsInt() const { return i_; }
  double AsDouble() const { return kind_ == Kind::kInt ? static_cast<double>(i_) : d_; }
  const std::string& AsString() const { return s_; }
  const ValueList& AsList() const { return *list_; }
  ValueDict& AsDict() const { return *dict_; }
  const Function& AsFunction() const { return *fn_; }

  // Python truthiness; Undefined is false.
  bool Truthy() const;
  // The dict entry `key`, or nullptr.
  const Value* Find(const std::string& key) const;
  // Python equality (1 == 1.0; lists and dicts element-wise; Undefined equals Undefined).
  bool Equals(const Value& other) const;
  // Python's str(): strings as they are, None, True, 1.5, ['a', 1], {'k': 'v'}.
  std::string Str() const;
  // Python's repr(): strings quoted as Python quotes them.
  std::string Repr() const;
  // json.dumps(value, ensure_ascii=False, indent=indent, sort_keys=sort_keys) (indent < 0:
  // none); Undefined and callables cannot be serialised.
  std::string ToJson(int indent, bool sort_keys) const;
  // "string", "list", ... for messages.
  std::string TypeName() const;

 private:
  // Lists and dicts nest at most kMaxDepth deep (a deeper one is a JinjaError), so
  // printing, comparing and freeing them never exhausts the stack.
  static constexpr int kMaxDepth = 512;
  // Namespaces, the only mutable values, are never stored in another value: no cycles.
  void SetDepthFrom(const Value& child) {
    if (child.is_namespace()) throw JinjaError("a namespace cannot be stored inside a value");
    if (child.depth_ + 1 > depth_) depth_ = child.depth_ + 1;
  }
  void CheckDepth() const;

  Kind kind_ = Kind::kUndefined;
  int depth_ = 0;
  bool b_ = false;
  bool namespace_ = false;
  int64_t i_ = 0;
  double d_ = 0;
  std::string s_;
  std::shared_ptr<ValueList> list_;
  std::shared_ptr<ValueDict> dict_;
  std::shared_ptr<Function> fn_;
};

}  // namespace rlhf::chat
