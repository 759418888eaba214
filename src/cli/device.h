// Resolving --device for subcommands.
#pragma once

#include <string>

namespace nucleisam::cli {

// Throws nucleisam::Error when "cuda" is asked for but this LibTorch has no usable GPU.
void check_device(const std::string& name);

}  // namespace nucleisam::cli
