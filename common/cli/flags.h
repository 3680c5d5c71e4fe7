#pragma once
// Command-line flags for one (sub)command: declared with a default and a help line,
// parsed from argv with clear errors. `--name value` and `--name=value` both work;
// booleans also accept a bare `--name`. Not thread-safe; use from main() only.

#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace rlhf::cli {

// The environment variable `name` when set and non-empty, else `fallback`: the default of
// a flag that containers set through the environment (RLHF_LISTEN, RLHF_TOKEN_FILE, ...).
std::string EnvOr(const std::string& name, const std::string& fallback);

class FlagSet {
 public:
  FlagSet(std::string command, std::string summary);

  // Each call registers --name; the target keeps its current value as the default.
  void String(std::string name, std::string* target, std::string help, bool required = false);
  void Int(std::string name, int64_t* target, std::string help);
  void UInt(std::string name, uint64_t* target, std::string help);
  void Float(std::string name, double* target, std::string help);
  void Bool(std::string name, bool* target, std::string help);

  // Parses args (argv without the program and command names). Errors name the flag
  // and the bad value. `--help`/`-h` sets help_requested() and returns OK.
  absl::Status Parse(std::span<const std::string> args);

  bool help_requested() const { return help_requested_; }
  // Whether --name appeared in the parsed args (so an environment variable may supply
  // it otherwise; see services/actor/torchrun_env.h). False for an unknown name.
  bool Given(absl::string_view name) const;
  const std::vector<std::string>& positional() const { return positional_; }
  // "usage: ..." followed by every flag with its default and help.
  std::string Usage() const;

 private:
  using Target = std::variant<std::string*, int64_t*, uint64_t*, double*, bool*>;
  struct Flag {
    std::string name;
    Target target;
    std::string help;
    std::string default_text;
    bool required = false;
    bool seen = false;
  };
  void Add(std::string name, Target target, std::string help, bool required);
  Flag* Find(absl::string_view name);
  static absl::Status Assign(Flag& flag, absl::string_view value);

  std::string command_;
  std::string summary_;
  std::vector<Flag> flags_;
  std::vector<std::string> positional_;
  bool help_requested_ = false;
};

// `status` with a leading field name (e.g. "top_p must be ...", as a library names it)
// replaced by the flag the user typed ("--top-p must be ..."), per `names`.
absl::Status InTermsOfFlags(
    const absl::Status& status,
    std::initializer_list<std::pair<std::string_view, std::string_view>> names);

}  // namespace rlhf::cli
