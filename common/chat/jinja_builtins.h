#pragma once
// What Jinja's operators, attributes, filters and tests do to values, as Python and
// jinja2 3.1 do them (the parts chat templates use). Each throws JinjaError naming the
// operation when the operands do not fit.

#include <optional>
#include <string>

#include "common/chat/jinja_value.h"

namespace rlhf::chat {

// No string or list a template builds may exceed this (a doubling loop stops here).
constexpr size_t kMaxValueBytes = size_t{64} << 20;

// + - * / // % ** ~ == != < <= > >= in, "not in".
Value BinaryOp(const std::string& op, const Value& a, const Value& b);

// obj.name: a dict's key (its items/keys/values/get methods first, as jinja2 tries
// getattr first), a string's or dict's method bound to it; Undefined when absent.
Value GetAttribute(const Value& object, const std::string& name);
// obj[key]: list and string indices (negative from the end), dict keys; Undefined when
// absent.
Value GetItem(const Value& object, const Value& key);
// obj[start:stop:step] on lists and strings (strings by code point).
Value Slice(const Value& object, const Value& start, const Value& stop, const Value& step);

// The items a for loop visits: a list's elements, a dict's keys, a string's characters;
// nothing for Undefined.
ValueList Iterate(const Value& value);

// value | name(args, kwargs).
Value ApplyFilter(const std::string& name, const Value& value, ValueList args, Kwargs kwargs);
// value is name(args).
bool ApplyTest(const std::string& name, const Value& value, const ValueList& args);

// The argument at `index`, else the keyword argument `name`, else Undefined (how filters and
// methods read their Python-style parameters).
const Value& Arg(const ValueList& args, const Kwargs& kwargs, size_t index, const char* name);

// Text helpers shared by filters and methods.
std::string StripChars(const std::string& s, const Value& chars, bool left, bool right);
size_t CodePointCount(const std::string& s);

}  // namespace rlhf::chat
