// --device handling shared by every subcommand.
#include "cli/device.h"

#include <torch/torch.h>

#include "nucleisam/errors.h"

namespace nucleisam::cli {

void check_device(const std::string& name) {
  if (name == "cuda" && !torch::cuda::is_available())
    throw Error("--device cuda: this build of LibTorch has no CUDA support or no GPU is visible");
}

}  // namespace nucleisam::cli
