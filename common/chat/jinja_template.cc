#include "common/chat/jinja_template.h"

#include <ctime>
#include <limits>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/chat/jinja_ast.h"
#include "common/chat/jinja_budget.h"
#include "common/chat/jinja_builtins.h"
#include "common/chat/jinja_lexer.h"
#include "common/chat/jinja_parser.h"

namespace rlhf::chat {
namespace {

// A runaway template (a huge range, deep loops) stops here instead of eating memory.
constexpr size_t kMaxOutputBytes = size_t{64} << 20;
constexpr int64_t kMaxRange = 1 << 20;
constexpr int kMaxMacroDepth = 64;

std::string StrftimeNow(const std::string& format) {
  const std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  char buffer[256];
  const size_t n = std::strftime(buffer, sizeof(buffer), format.c_str(), &local);
  return std::string(buffer, n);
}

ValueDict Globals(const std::function<std::string(const std::string&)>& now) {
  ValueDict globals;
  globals.emplace_back(
      "raise_exception", Value::Callable([](ValueList& args, Kwargs&) -> Value {
        throw JinjaError("raise_exception: " + (args.empty() ? std::string() : args[0].Str()));
      }));
  globals.emplace_back(
      "strftime_now", Value::Callable([now](ValueList& args, Kwargs&) {
        if (args.empty() || !args[0].is_string()) throw JinjaError("strftime_now needs a format");
        return Value::String(now ? now(args[0].AsString()) : StrftimeNow(args[0].AsString()));
      }));
  auto from_kwargs = [](bool is_namespace) {
    return Value::Callable([is_namespace](ValueList& args, Kwargs& kwargs) {
      ValueDict items;
      for (const Value& arg : args) {  // namespace(some_dict, key=value)
        if (arg.is_dict()) items.insert(items.end(), arg.AsDict().begin(), arg.AsDict().end());
      }
      for (auto& [key, value] : kwargs) items.emplace_back(key, value);
      return Value::Dict(std::move(items), is_namespace);
    });
  };
  globals.emplace_back("namespace", from_kwargs(true));
  globals.emplace_back("dict", from_kwargs(false));
  globals.emplace_back("range", Value::Callable([](ValueList& args, Kwargs&) {
                         int64_t start = 0, stop = 0, step = 1;
                         for (const Value& a : args) {
                           if (a.kind() != Value::Kind::kInt)
                             throw JinjaError("range needs integers");
                         }
                         if (args.size() == 1)
                           stop = args[0].AsInt();
                         else if (args.size() >= 2)
                           start = args[0].AsInt(), stop = args[1].AsInt();
                         if (args.size() == 3) step = args[2].AsInt();
                         if (args.empty() || args.size() > 3 || step == 0)
                           throw JinjaError("bad range arguments");
                         ValueList out;
                         for (int64_t i = start; step > 0 ? i < stop : i > stop;) {
                           if (out.size() >= kMaxRange) throw JinjaError("range too large");
                           ChargeWork(1);
                           out.push_back(Value::Int(i));
                           if (__builtin_add_overflow(i, step, &i)) break;
                         }
                         return Value::List(std::move(out));
                       }));
  return globals;
}

class Renderer {
 public:
  Renderer(const ValueDict& globals, const ValueDict& variables) {
    scopes_.emplace_back();
    for (const auto& [k, v] : globals) scopes_.back()[k] = v;
    for (const auto& [k, v] : variables) scopes_.back()[k] = v;
  }

  enum class Flow { kNormal, kBreak, kContinue };

  Flow Exec(const Body& body, std::string* out) {
    for (const NodePtr& node : body) {
      const Flow flow = ExecOne(*node, out);
      if (flow != Flow::kNormal) return flow;
      if (out->size() > kMaxOutputBytes) throw JinjaError("the rendered text exceeds 64 MiB");
    }
    return Flow::kNormal;
  }

 private:
  Flow ExecOne(const Node& node, std::string* out) {
    ChargeWork(1);
    switch (node.kind) {
      case Node::Kind::kText:
        *out += node.text;
        return Flow::kNormal;
      case Node::Kind::kOutput:
        *out += Eval(*node.expr).Str();
        return Flow::kNormal;
      case Node::Kind::kScope:
        return Exec(node.body, out);
      case Node::Kind::kBreak:
        return Flow::kBreak;
      case Node::Kind::kContinue:
        return Flow::kContinue;
      case Node::Kind::kIf:
        for (const auto& [condition, body] : node.branches) {
          if (Eval(*condition).Truthy()) return Exec(body, out);
        }
        return Exec(node.else_body, out);
      case Node::Kind::kSet:
        Set(node);
        return Flow::kNormal;
      case Node::Kind::kFor:
        For(node, out);
        return Flow::kNormal;
      case Node::Kind::kMacro:
        DefineMacro(node);
        return Flow::kNormal;
    }
    return Flow::kNormal;
  }

  // A callable that renders the macro's body with its parameters bound (valid while this
  // renderer runs, which is as long as any value of the template lives).
  void DefineMacro(const Node& node) {
    scopes_.back()[node.targets[0]] =
        Value::Callable([this, &node](ValueList& args, Kwargs& kwargs) {
          if (macro_depth_ >= kMaxMacroDepth) {
            throw JinjaError("macro '" + node.targets[0] + "' nests deeper than 64 calls");
          }
          if (args.size() > node.params.size()) {
            throw JinjaError("macro '" + node.targets[0] + "' takes " +
                             std::to_string(node.params.size()) + " arguments");
          }
          std::map<std::string, Value> frame;
          for (size_t i = 0; i < node.params.size(); ++i) {
            const auto& [name, fallback] = node.params[i];
            Value value;
            if (i < args.size()) {
              value = args[i];
            } else if (fallback) {
              value = Eval(*fallback);
            }
            for (const auto& [key, v] : kwargs) {
              if (key == name) value = v;
            }
            frame[name] = std::move(value);
          }
          scopes_.push_back(std::move(frame));
          ++macro_depth_;
          std::string out;
          try {
            Exec(node.body, &out);
          } catch (...) {
            --macro_depth_;
            scopes_.pop_back();
            throw;
          }
          --macro_depth_;
          scopes_.pop_back();
          return Value::String(std::move(out));
        });
  }

  void Set(const Node& node) {
    if (!node.attribute.empty()) {
      Value target = Lookup(node.targets[0]);
      if (!target.is_namespace()) {
        throw JinjaError(At(node.line) + "cannot assign attribute '" + node.attribute + "' of " +
                         node.targets[0] + ": not a namespace");
      }
      Value value = Eval(*node.expr);
      if (value.is_namespace()) {
        throw JinjaError(At(node.line) + "a namespace cannot be stored inside a namespace");
      }
      for (auto& [key, v] : target.AsDict()) {
        if (key == node.attribute) {
          v = std::move(value);
          return;
        }
      }
      target.AsDict().emplace_back(node.attribute, std::move(value));
      return;
    }
    Value value;
    if (node.expr) {
      value = Eval(*node.expr);
    } else {
      std::string captured;
      Exec(node.body, &captured);
      value = Value::String(std::move(captured));
    }
    Assign(node.targets, value, node.line);
  }

  void Assign(const std::vector<std::string>& targets, const Value& value, int line) {
    if (targets.size() == 1) {
      scopes_.back()[targets[0]] = value;
      return;
    }
    const ValueList items = Iterate(value);
    if (items.size() != targets.size()) {
      throw JinjaError(At(line) + "cannot unpack " + std::to_string(items.size()) +
                       " values into " + std::to_string(targets.size()) + " names");
    }
    for (size_t i = 0; i < targets.size(); ++i) scopes_.back()[targets[i]] = items[i];
  }

  void For(const Node& node, std::string* out) {
    ValueList items;
    {
      ValueList all = Iterate(Eval(*node.expr));
      if (!node.filter) {
        items = std::move(all);
      } else {
        scopes_.emplace_back();
        for (const Value& item : all) {
          Assign(node.targets, item, node.line);
          if (Eval(*node.filter).Truthy()) items.push_back(item);
        }
        scopes_.pop_back();
      }
    }
    if (items.empty()) {
      Exec(node.else_body, out);
      return;
    }
    const int64_t n = static_cast<int64_t>(items.size());
    for (int64_t i = 0; i < n; ++i) {
      ChargeWork(10);          // a scope and the loop variable
      scopes_.emplace_back();  // each iteration starts from the enclosing scope, as in jinja2
      Assign(node.targets, items[i], node.line);
      ValueDict loop = {
          {"index", Value::Int(i + 1)},
          {"index0", Value::Int(i)},
          {"revindex", Value::Int(n - i)},
          {"revindex0", Value::Int(n - i - 1)},
          {"first", Value::Bool(i == 0)},
          {"last", Value::Bool(i == n - 1)},
          {"length", Value::Int(n)},
          {"previtem", i > 0 ? items[i - 1] : Value()},
          {"nextitem", i + 1 < n ? items[i + 1] : Value()},
      };
      loop.emplace_back("cycle", Value::Callable([i](ValueList& args, Kwargs&) {
                          if (args.empty()) throw JinjaError("loop.cycle needs arguments");
                          return args[static_cast<size_t>(i) % args.size()];
                        }));
      scopes_.back()["loop"] = Value::Dict(std::move(loop));
      const Flow flow = Exec(node.body, out);
      scopes_.pop_back();
      if (flow == Flow::kBreak) break;
    }
  }

  Value Lookup(const std::string& name) const {
    for (auto it = scopes_.rbegin(); it != scopes_.rend(); ++it) {
      auto found = it->find(name);
      if (found != it->end()) return found->second;
    }
    return Value();
  }

  Value Eval(const Expr& e) {
    try {
      return EvalUnchecked(e);
    } catch (const JinjaError& error) {
      const std::string what = error.what();
      if (what.rfind("line ", 0) == 0 || what.rfind("raise_exception", 0) == 0) throw;
      throw JinjaError(At(e.line) + what);
    }
  }

  Value EvalUnchecked(const Expr& e) {
    switch (e.kind) {
      case Expr::Kind::kLiteral:
        return e.literal;
      case Expr::Kind::kName:
        return Lookup(e.name);
      case Expr::Kind::kList: {
        ValueList items;
        for (const ExprPtr& arg : e.args) items.push_back(Eval(*arg));
        return Value::List(std::move(items));
      }
      case Expr::Kind::kDict: {
        ValueDict items;
        for (size_t i = 0; i + 1 < e.args.size(); i += 2) {
          const Value key = Eval(*e.args[i]);
          if (!key.is_string()) throw JinjaError("dict keys must be strings here");
          items.emplace_back(key.AsString(), Eval(*e.args[i + 1]));
        }
        return Value::Dict(std::move(items));
      }
      case Expr::Kind::kAttribute:
        return GetAttribute(Eval(*e.a), e.name);
      case Expr::Kind::kItem:
        return GetItem(Eval(*e.a), Eval(*e.b));
      case Expr::Kind::kSlice:
        return Slice(Eval(*e.a), e.b ? Eval(*e.b) : Value(), e.c ? Eval(*e.c) : Value(),
                     e.d ? Eval(*e.d) : Value());
      case Expr::Kind::kCall: {
        const Value callee = Eval(*e.a);
        if (!callee.is_callable()) {
          throw JinjaError(callee.is_undefined() ? "call of an undefined name"
                                                 : "a " + callee.TypeName() + " is not callable");
        }
        ValueList args;
        Kwargs kwargs;
        EvalArguments(e, &args, &kwargs);
        return callee.AsFunction()(args, kwargs);
      }
      case Expr::Kind::kFilter: {
        ValueList args;
        Kwargs kwargs;
        EvalArguments(e, &args, &kwargs);
        return ApplyFilter(e.name, Eval(*e.a), std::move(args), std::move(kwargs));
      }
      case Expr::Kind::kTest: {
        ValueList args;
        Kwargs kwargs;
        EvalArguments(e, &args, &kwargs);
        return Value::Bool(ApplyTest(e.name, Eval(*e.a), args) != e.negated);
      }
      case Expr::Kind::kUnary: {
        const Value v = Eval(*e.a);
        if (e.name == "not") return Value::Bool(!v.Truthy());
        if (!v.is_number()) throw JinjaError("unary " + e.name + " of a " + v.TypeName());
        if (e.name == "+") return v;
        if (v.kind() == Value::Kind::kInt && v.AsInt() == std::numeric_limits<int64_t>::min()) {
          throw JinjaError("integer overflow");
        }
        return v.kind() == Value::Kind::kInt ? Value::Int(-v.AsInt()) : Value::Float(-v.AsDouble());
      }
      case Expr::Kind::kBinary: {
        if (e.name == "and" || e.name == "or") {  // Python returns an operand
          Value left = Eval(*e.a);
          if (left.Truthy() == (e.name == "or")) return left;
          return Eval(*e.b);
        }
        return BinaryOp(e.name, Eval(*e.a), Eval(*e.b));
      }
      case Expr::Kind::kConditional:
        if (Eval(*e.b).Truthy()) return Eval(*e.a);
        return e.c ? Eval(*e.c) : Value();
    }
    return Value();
  }

  void EvalArguments(const Expr& e, ValueList* args, Kwargs* kwargs) {
    for (const ExprPtr& arg : e.args) args->push_back(Eval(*arg));
    for (const auto& [key, arg] : e.kwargs) kwargs->emplace_back(key, Eval(*arg));
  }

  static std::string At(int line) { return "line " + std::to_string(line) + ": "; }

  std::vector<std::map<std::string, Value>> scopes_;
  int macro_depth_ = 0;
};

}  // namespace

absl::StatusOr<Template> Template::Parse(const std::string& source) {
  try {
    Template t;
    t.body_ = std::make_shared<const Body>(chat::Parse(Tokenize(source)));
    return t;
  } catch (const std::exception& error) {  // JinjaError; anything else is a bug, not a crash
    return absl::InvalidArgumentError(absl::StrCat("chat template: ", error.what()));
  }
}

absl::StatusOr<std::string> Template::Render(const ValueDict& variables) const {
  try {
    WorkBudget budget;
    Renderer renderer(Globals(now_), variables);
    std::string out;
    renderer.Exec(*body_, &out);
    return out;
  } catch (const std::exception& error) {  // JinjaError; anything else is a bug, not a crash
    return absl::InvalidArgumentError(absl::StrCat("chat template: ", error.what()));
  }
}

}  // namespace rlhf::chat
