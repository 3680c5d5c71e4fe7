#include "common/cli/flags.h"

#include <cstdlib>

#include <cmath>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace rlhf::cli {

std::string EnvOr(const std::string& name, const std::string& fallback) {
  const char* value = std::getenv(name.c_str());
  return value != nullptr && *value != '\0' ? std::string(value) : fallback;
}

namespace {

template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

std::string DefaultText(const std::variant<std::string*, int64_t*, uint64_t*, double*, bool*>& t) {
  return std::visit(Overloaded{[](std::string* v) { return absl::StrCat("\"", *v, "\""); },
                               [](bool* v) { return std::string(*v ? "true" : "false"); },
                               [](auto* v) { return absl::StrCat(*v); }},
                    t);
}

}  // namespace

FlagSet::FlagSet(std::string command, std::string summary)
    : command_(std::move(command)), summary_(std::move(summary)) {}

void FlagSet::String(std::string name, std::string* target, std::string help, bool required) {
  Add(std::move(name), target, std::move(help), required);
}
void FlagSet::Int(std::string name, int64_t* target, std::string help) {
  Add(std::move(name), target, std::move(help), false);
}
void FlagSet::UInt(std::string name, uint64_t* target, std::string help) {
  Add(std::move(name), target, std::move(help), false);
}
void FlagSet::Float(std::string name, double* target, std::string help) {
  Add(std::move(name), target, std::move(help), false);
}
void FlagSet::Bool(std::string name, bool* target, std::string help) {
  Add(std::move(name), target, std::move(help), false);
}

void FlagSet::Add(std::string name, Target target, std::string help, bool required) {
  std::string default_text = required ? "required" : DefaultText(target);
  flags_.push_back({std::move(name), target, std::move(help), std::move(default_text), required});
}

FlagSet::Flag* FlagSet::Find(absl::string_view name) {
  for (Flag& flag : flags_) {
    if (flag.name == name) return &flag;
  }
  return nullptr;
}

absl::Status FlagSet::Assign(Flag& flag, absl::string_view value) {
  auto bad = [&](absl::string_view want) {
    return absl::InvalidArgumentError(
        absl::StrCat("flag --", flag.name, ": \"", value, "\" is not ", want));
  };
  return std::visit(
      Overloaded{[&](std::string* v) {
                   *v = std::string(value);
                   return absl::OkStatus();
                 },
                 [&](int64_t* v) {
                   return absl::SimpleAtoi(value, v) ? absl::OkStatus() : bad("an integer");
                 },
                 [&](uint64_t* v) {
                   return absl::SimpleAtoi(value, v) ? absl::OkStatus()
                                                     : bad("a non-negative integer");
                 },
                 [&](double* v) {
                   return absl::SimpleAtod(value, v) && std::isfinite(*v) ? absl::OkStatus()
                                                                          : bad("a finite number");
                 },
                 [&](bool* v) {
                   return absl::SimpleAtob(value, v) ? absl::OkStatus() : bad("true or false");
                 }},
      flag.target);
}

absl::Status FlagSet::Parse(std::span<const std::string> args) {
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--help" || arg == "-h") {
      help_requested_ = true;
      return absl::OkStatus();
    }
    if (arg == "--") {
      positional_.insert(positional_.end(), args.begin() + i + 1, args.end());
      break;
    }
    if (arg.size() < 3 || arg.rfind("--", 0) != 0) {
      positional_.push_back(arg);
      continue;
    }
    absl::string_view body(arg);
    body.remove_prefix(2);
    const size_t eq = body.find('=');
    absl::string_view name = body.substr(0, eq);
    Flag* flag = Find(name);
    if (flag == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name, " for '", command_,
                                                     "' (see '", command_, " --help')"));
    }
    flag->seen = true;
    if (eq != absl::string_view::npos) {
      if (auto s = Assign(*flag, body.substr(eq + 1)); !s.ok()) return s;
    } else if (std::holds_alternative<bool*>(flag->target)) {
      *std::get<bool*>(flag->target) = true;
    } else if (i + 1 < args.size()) {
      if (auto s = Assign(*flag, args[++i]); !s.ok()) return s;
    } else {
      return absl::InvalidArgumentError(absl::StrCat("flag --", name, " needs a value"));
    }
  }
  for (const Flag& flag : flags_) {
    if (flag.required && !flag.seen) {
      return absl::InvalidArgumentError(
          absl::StrCat("missing required flag --", flag.name, " for '", command_, "'"));
    }
  }
  return absl::OkStatus();
}

bool FlagSet::Given(absl::string_view name) const {
  for (const Flag& flag : flags_) {
    if (flag.name == name) return flag.seen;
  }
  return false;
}

std::string FlagSet::Usage() const {
  // A summary that spells out its own usage line (with positional arguments) replaces the
  // generic one, so --help says "usage:" once.
  std::string out =
      absl::StrContains(summary_, "usage: ")
          ? absl::StrCat(summary_, "\n\nflags:\n")
          : absl::StrCat("usage: ", command_, " [flags]\n\n", summary_, "\n\nflags:\n");
  for (const Flag& flag : flags_) {
    absl::StrAppendFormat(&out, "  --%-18s %s (%s)\n", flag.name, flag.help, flag.default_text);
  }
  return out;
}

absl::Status InTermsOfFlags(
    const absl::Status& status,
    std::initializer_list<std::pair<std::string_view, std::string_view>> names) {
  const std::string message(status.message());
  for (const auto& [field, flag] : names) {
    const std::string prefix = std::string(field) + " ";
    if (message.rfind(prefix, 0) == 0) {
      return absl::Status(status.code(), std::string(flag) + message.substr(field.size()));
    }
  }
  return status;
}

}  // namespace rlhf::cli
