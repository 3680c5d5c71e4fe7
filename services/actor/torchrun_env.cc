#include "services/actor/torchrun_env.h"

#include <cstdint>
#include <optional>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace rlhf::actor {
namespace {

// The variable's text, or nullopt when it is unset or empty.
std::optional<std::string> Lookup(const EnvLookup& env, const char* name) {
  const char* value = env(name);
  if (value == nullptr || *value == '\0') return std::nullopt;
  return std::string(value);
}

// An integer in [min, max]; `want` describes the range for the error.
absl::Status ParseInt(const std::string& name, const std::string& text, int64_t min, int64_t max,
                      const std::string& want, int64_t& out) {
  if (!absl::SimpleAtoi(text, &out) || out < min || out > max) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": want ", want, ", got '", text, "'"));
  }
  return absl::OkStatus();
}

absl::Status Disagree(const std::string& flag, const std::string& flag_value,
                      const std::string& var, const std::string& var_value) {
  return absl::InvalidArgumentError(
      absl::StrCat("--", flag, " ", flag_value, " disagrees with ", var, "=", var_value,
                   " in the environment (set by torchrun?): drop the flag or make them agree"));
}

// Applies one integer variable to `value`, or checks it against the flag the user gave.
absl::Status ApplyInt(const EnvLookup& env, const char* var, const std::string& flag, bool given,
                      int64_t min, const std::string& want, int64_t& value, std::string& source) {
  auto text = Lookup(env, var);
  if (!text) return absl::OkStatus();
  int64_t parsed = 0;
  if (auto s = ParseInt(var, *text, min, INT64_MAX, want, parsed); !s.ok()) return s;
  if (!given) {
    value = parsed;
    source = var;
  } else if (parsed != value) {
    return Disagree(flag, absl::StrCat(value), var, *text);
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ApplyTorchrunEnv(const EnvLookup& env, const GivenFlags& given,
                              GroupSettings& settings) {
  std::string rank_source = "--rank", world_source = "--world-size";
  if (auto s = ApplyInt(env, "RANK", "rank", given.rank, 0, "an integer >= 0", settings.rank,
                        rank_source);
      !s.ok()) {
    return s;
  }
  if (auto s = ApplyInt(env, "WORLD_SIZE", "world-size", given.world_size, 1, "an integer >= 1",
                        settings.world_size, world_source);
      !s.ok()) {
    return s;
  }

  const auto addr = Lookup(env, "MASTER_ADDR");
  const auto port_text = Lookup(env, "MASTER_PORT");
  if (addr.has_value() != port_text.has_value()) {
    return absl::InvalidArgumentError(addr ? "MASTER_ADDR is set but MASTER_PORT is not"
                                           : "MASTER_PORT is set but MASTER_ADDR is not");
  }
  if (addr) {
    int64_t port = 0;
    if (auto s = ParseInt("MASTER_PORT", *port_text, 1, 65535, "a port in [1, 65535]", port);
        !s.ok()) {
      return s;
    }
    const std::string master = absl::StrCat(*addr, ":", port);
    if (!given.store) {
      settings.store = master;
    } else {
      // The same port spelled differently ("029500") still agrees.
      const size_t colon = settings.store.rfind(':');
      int64_t flag_port = -1;
      const bool same = colon != std::string::npos && settings.store.substr(0, colon) == *addr &&
                        absl::SimpleAtoi(settings.store.substr(colon + 1), &flag_port) &&
                        flag_port == port;
      if (!same) {
        return Disagree("group-store", settings.store, "MASTER_ADDR:MASTER_PORT", master);
      }
    }
    const auto agent_store = Lookup(env, "TORCHELASTIC_USE_AGENT_STORE");
    if (settings.world_size > 1 && agent_store == "True") {
      return absl::InvalidArgumentError(absl::StrCat(
          "torchrun's agent already hosts a TCPStore at ", master,
          " (TORCHELASTIC_USE_AGENT_STORE=True) where rlhf-actor's rank 0 must host the "
          "group's: run torchrun --standalone or --rdzv-backend c10d with "
          "TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1"));
    }
  }

  if (settings.world_size < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--world-size: want an integer >= 1, got ", settings.world_size));
  }
  if (settings.rank < 0 || settings.rank >= settings.world_size) {
    return absl::InvalidArgumentError(absl::StrCat("rank ", settings.rank, " (", rank_source,
                                                   ") must be in [0, world size ",
                                                   settings.world_size, " (", world_source, "))"));
  }

  settings.local_rank = settings.rank;
  if (auto text = Lookup(env, "LOCAL_RANK")) {
    if (auto s =
            ParseInt("LOCAL_RANK", *text, 0, INT64_MAX, "an integer >= 0", settings.local_rank);
        !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

}  // namespace rlhf::actor
