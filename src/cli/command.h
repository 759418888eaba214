// Subcommand registry. Each src/cli/<name>.cpp registers its subcommand with a static
// CommandRegistration; main.cpp only parses global options and dispatches.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>

#include "cli/usage_error.h"

namespace nucleisam::cli {

// Options every subcommand sees (parsed before the subcommand runs).
struct GlobalOptions {
  int threads = 0;              // 0: library default
  std::string device = "cpu";   // "cpu" or "cuda"
  int verbosity = 0;            // -v count
  bool quiet = false;
  bool accept_damaged_images = false;  // io::set_accept_damaged_images
};
const GlobalOptions& global_options();

// setup() adds the subcommand's options to `app` and returns the function that runs it; the
// function returns the exit code (0 success). Errors are thrown (nucleisam::Error) and turned
// into one line and exit code 1 (2 for UsageError) by main.
using CommandRunner = std::function<int()>;
using CommandSetup = std::function<CommandRunner(CLI::App& app)>;

struct CommandRegistration {
  CommandRegistration(std::string name, std::string description, CommandSetup setup);
};

}  // namespace nucleisam::cli
