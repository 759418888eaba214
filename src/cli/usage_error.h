// The CLI's own error for a wrong command line or recipe (exit code 2), apart from command.h so
// that the parts of the CLI built as libraries (the recipe parser) can throw it without CLI11.
#pragma once

#include "nucleisam/errors.h"

namespace nucleisam::cli {

// The command line was wrong (unknown option value, conflicting flags). Exit code 2. Only the CLI
// throws it; library code throws OptionError for option values it cannot use.
struct UsageError : Error {
  using Error::Error;
};

}  // namespace nucleisam::cli
