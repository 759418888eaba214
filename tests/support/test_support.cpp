#include "support/test_support.h"

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>

#include <atomic>
#include <cstdlib>
#include <filesystem>

namespace fs = std::filesystem;

namespace nucleisam::test {

std::string shared_path(const std::string& relative) {
  const char* env = std::getenv("NUCLEISAM_SHARED");
  std::string root = env && *env ? env : NUCLEISAM_SHARED_DIR_DEFAULT;
  return root + "/" + relative;
}

bool shared_exists(const std::string& relative) {
  std::error_code ec;
  return fs::exists(shared_path(relative), ec);
}

std::string binary_dir() { return NUCLEISAM_BINARY_DIR; }

CliResult run_cli(const std::string& args) {
  std::string cmd = binary_dir() + "/nucleisam " + args + " 2>&1";
  CliResult r;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  int status = pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

int count_lines(const std::string& s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

TempDir::TempDir() {
  static std::atomic<int> counter{0};
  fs::path p = fs::temp_directory_path() /
               ("nucleisam-test-" + std::to_string(getpid()) + "-" + std::to_string(counter++));
  fs::remove_all(p);
  fs::create_directories(p);
  path_ = p.string();
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

}  // namespace nucleisam::test
