// rlhf: the user's command line. Subcommands live in their own files; main() only
// dispatches.

#include <iostream>
#include <string>
#include <vector>

#include "services/cli/generate_command.h"

namespace {

constexpr char kUsage[] =
    "usage: rlhf COMMAND [flags]\n"
    "\n"
    "commands:\n"
    "  generate   print a continuation of a prompt from a Hugging Face model directory\n"
    "\n"
    "'rlhf COMMAND --help' lists the flags of a command.\n";

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    std::cout << kUsage;
    return argc < 2 ? 2 : 0;
  }
  const std::string command = argv[1];
  const std::vector<std::string> args(argv + 2, argv + argc);
  if (command == "generate") return rlhf::cli::RunGenerate(args);
  std::cerr << "rlhf: error: unknown command '" << command << "'\n\n" << kUsage;
  return 2;
}
