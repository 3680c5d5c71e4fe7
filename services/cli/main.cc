// rlhf: the user's command line. Subcommands live in their own files; main() only
// dispatches.

#include <iostream>
#include <string>
#include <vector>

#include "common/cli/malloc_arenas.h"
#include "services/cli/best_of_n_command.h"
#include "services/cli/eval_command.h"
#include "services/cli/generate_command.h"
#include "services/cli/job_commands.h"
#include "services/cli/local_command.h"

namespace {

constexpr char kUsage[] =
    "usage: rlhf COMMAND [flags]\n"
    "\n"
    "commands:\n"
    "  local      run a job (JOB.json) with every service in this process\n"
    "  submit     submit a job to a coordinator; prints the job id\n"
    "  status     show a job's state, progress and latest metrics\n"
    "  list       list jobs (optionally in one state)\n"
    "  cancel     cancel a queued or running job\n"
    "  watch      follow a job until it ends\n"
    "  health     ask a server for its grpc.health.v1 status\n"
    "  eval       measure models on held-out pairs and prompts (accuracy, score, KL)\n"
    "  generate   print a continuation of a prompt from a Hugging Face model directory\n"
    "  best-of-n  sample N completions per prompt, keep the best by a reward: an SFT dataset\n"
    "\n"
    "'rlhf COMMAND --help' lists the flags of a command.\n";

}  // namespace

int main(int argc, char** argv) {
  rlhf::cli::LimitMallocArenas();  // before any thread allocates
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    std::cout << kUsage;
    return argc < 2 ? 2 : 0;
  }
  const std::string command = argv[1];
  const std::vector<std::string> args(argv + 2, argv + argc);
  if (command == "generate") return rlhf::cli::RunGenerate(args);
  if (command == "eval") return rlhf::cli::RunEval(args);
  if (command == "best-of-n") return rlhf::cli::RunBestOfN(args);
  if (command == "local") return rlhf::cli::RunLocal(args);
  if (command == "submit") return rlhf::cli::RunSubmit(args);
  if (command == "status") return rlhf::cli::RunStatus(args);
  if (command == "list") return rlhf::cli::RunList(args);
  if (command == "cancel") return rlhf::cli::RunCancel(args);
  if (command == "watch") return rlhf::cli::RunWatch(args);
  if (command == "health") return rlhf::cli::RunHealth(args);
  std::cerr << "rlhf: error: unknown command '" << command << "'\n\n" << kUsage;
  return 2;
}
