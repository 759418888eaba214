// nucleisam command-line entry point: global options, dispatch, and the one place where errors
// become a single line on stderr and an exit code (0 ok, 1 runtime failure, 2 usage error).
#include <torch/torch.h>

#include <CLI/CLI.hpp>
#include <iostream>
#include <map>
#include <opencv2/core.hpp>
#include <vector>

#include "cli/command.h"
#include "nucleisam/cpu_features.h"
#include "cli/device.h"
#include "nucleisam/errors.h"
#include "nucleisam/image_io.h"
#include "nucleisam/log.h"
#include "nucleisam/sam/cpu_linear.h"
#include "nucleisam/threads.h"
#include "nucleisam/weights/tensor_memory.h"

namespace nucleisam::cli {
namespace {

struct Entry {
  std::string name, description;
  CommandSetup setup;
};
std::vector<Entry>& registry() {
  static std::vector<Entry> r;
  return r;
}
GlobalOptions g_options;

std::string version_string() {
  std::string s = std::string("nucleisam ") + NUCLEISAM_VERSION + " (LibTorch " +
                  std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) + "." +
                  std::to_string(TORCH_VERSION_PATCH) + ", CUDA " +
                  (torch::cuda::is_available() ? "available, " + std::to_string(torch::cuda::device_count()) + " device(s)"
                                               : std::string("not available")) +
                  ", OpenCV " + CV_VERSION + ")\nCPU: " + cpu_features().summary() +
                  "; --precision auto = " + resolve_precision("auto");
  const auto& gemm = sam::fp32_gemm_choice();
  s += std::string("\nBLAS: ") + blas_kernels_summary();
  s += std::string("\nfp32 matrix products: ") + sam::to_string(gemm.path) + " (" + gemm.reason + ")";
  return s;
}

// First line of a message: LibTorch errors carry multi-line context we never show users.
std::string first_line(const std::string& s) {
  auto p = s.find('\n');
  return p == std::string::npos ? s : s.substr(0, p);
}

}  // namespace

const GlobalOptions& global_options() { return g_options; }

CommandRegistration::CommandRegistration(std::string name, std::string description, CommandSetup setup) {
  registry().push_back({std::move(name), std::move(description), std::move(setup)});
}

int run_main(int argc, char** argv) {
  CLI::App app{"nucleisam: nucleus segmentation and classification in H&E images, built on Segment Anything"};
  app.name("nucleisam");
  app.require_subcommand(0, 1);
  app.set_version_flag("--version", version_string);
  app.add_flag("-v,--verbose", g_options.verbosity, "More log output (repeat for debug)");
  app.add_flag("--quiet", g_options.quiet, "Only errors");
  app.add_option("--threads", g_options.threads, "CPU threads (default: all cores)")->check(CLI::Range(1, 4096));
  app.add_option("--device", g_options.device, "Compute device")->check(CLI::IsMember({"cpu", "cuda"}));
  app.add_flag("--accept-damaged-images", g_options.accept_damaged_images,
               "Read damaged images (cut short, failing a CRC, a TIFF strip that does not decode) with a warning, "
               "keeping what decodes, instead of refusing them");

  std::sort(registry().begin(), registry().end(), [](const Entry& a, const Entry& b) { return a.name < b.name; });
  std::map<CLI::App*, CommandRunner> runners;
  for (auto& e : registry()) {
    CLI::App* sub = app.add_subcommand(e.name, e.description);
    // Global options may also follow the subcommand: `nucleisam sam --threads 2 ...`.
    sub->fallthrough();
    runners[sub] = e.setup(*sub);
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "nucleisam: " << first_line(e.what()) << " (see nucleisam --help)\n";
    return 2;
  }

  io::set_accept_damaged_images(g_options.accept_damaged_images);
  if (g_options.quiet) log::set_level(log::Level::quiet);
  else if (g_options.verbosity >= 2) log::set_level(log::Level::debug);
  else log::set_level(log::Level::info);
  {
    // Debian's LibTorch starts with one intra-op thread whatever the machine: "all cores" must be
    // asked for explicitly (the CPUs this process may run on, as nproc counts them).
    const int threads = g_options.threads > 0 ? g_options.threads : available_cpus();
    torch::set_num_threads(threads);
    limit_blas_threads(threads);
    cv::setNumThreads(threads);
  }

  for (auto* sub : app.get_subcommands()) {
    check_device(g_options.device);
    return runners.at(sub)();
  }
  std::cout << app.help();
  return 0;
}

}  // namespace nucleisam::cli

int main(int argc, char** argv) {
  using namespace nucleisam;
  use_best_openblas_kernels(argv);  // may run this program again with OPENBLAS_CORETYPE set
  keep_freed_memory_in_process();   // large tensors reuse freed blocks instead of faulting in new ones
  use_huge_pages_for_large_tensors();  // tensors >= 32 MiB: 2 MiB pages, a third of the faulting
  try {
    return cli::run_main(argc, argv);
  } catch (const cli::UsageError& e) {
    std::cerr << "nucleisam: " << e.what() << '\n';
    return 2;
  } catch (const OptionError& e) {
    std::cerr << "nucleisam: " << e.what() << '\n';
    return 2;
  } catch (const Error& e) {
    std::cerr << "nucleisam: " << e.what() << '\n';
    return 1;
  } catch (const c10::Error& e) {
    std::cerr << "nucleisam: " << cli::first_line(e.what_without_backtrace()) << '\n';
    return 1;
  } catch (const std::bad_alloc&) {
    std::cerr << "nucleisam: out of memory\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "nucleisam: " << cli::first_line(e.what()) << '\n';
    return 1;
  }
}
