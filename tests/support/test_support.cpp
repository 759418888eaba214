#include "support/test_support.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <random>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "nucleisam/atomic_file.h"

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

namespace {

// Standard CRC-32 (PNG chunks), bit by bit.
uint32_t crc32(const std::string& bytes) {
  uint32_t c = 0xFFFFFFFFu;
  for (unsigned char b : bytes) {
    c ^= b;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
  }
  return c ^ 0xFFFFFFFFu;
}

std::string be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
}

}  // namespace

std::string png_with_phys(const std::string& png, uint32_t x, uint32_t y, char unit) {
  const std::string body = "pHYs" + be32(x) + be32(y) + std::string(1, unit);
  const std::string chunk = be32(9) + body + be32(crc32(body));
  const size_t after_ihdr = 8 + 4 + 4 + 13 + 4;  // signature, IHDR length, type, data, CRC
  return png.substr(0, after_ihdr) + chunk + png.substr(after_ihdr);
}

}  // namespace nucleisam::test

namespace nucleisam::test {
namespace {

// Sign of the orientation of (a, b, c); exact for the coordinates the writers produce (small
// multiples of 1/2, possibly scaled), computed in long double.
int orientation(const ContourPoint& a, const ContourPoint& b, const ContourPoint& c) {
  long double v = (static_cast<long double>(b.x) - a.x) * (static_cast<long double>(c.y) - a.y) -
                  (static_cast<long double>(b.y) - a.y) * (static_cast<long double>(c.x) - a.x);
  return v > 0 ? 1 : v < 0 ? -1 : 0;
}

bool on_segment(const ContourPoint& p, const ContourPoint& a, const ContourPoint& b) {
  return std::min(a.x, b.x) <= p.x && p.x <= std::max(a.x, b.x) && std::min(a.y, b.y) <= p.y &&
         p.y <= std::max(a.y, b.y) && orientation(a, b, p) == 0;
}

bool segments_meet(const ContourPoint& a, const ContourPoint& b, const ContourPoint& c, const ContourPoint& d) {
  int o1 = orientation(a, b, c), o2 = orientation(a, b, d), o3 = orientation(c, d, a), o4 = orientation(c, d, b);
  if (o1 != o2 && o3 != o4 && o1 * o2 <= 0 && o3 * o4 <= 0 && (o1 != 0 || o2 != 0)) return true;
  return on_segment(c, a, b) || on_segment(d, a, b) || on_segment(a, c, d) || on_segment(b, c, d);
}

}  // namespace

bool ring_is_simple(const std::vector<ContourPoint>& ring, std::string* why) {
  auto fail = [&](const std::string& w) {
    if (why) *why = w;
    return false;
  };
  if (ring.size() < 4) return fail("fewer than 4 points");
  if (!(ring.front() == ring.back())) return fail("not closed");
  const size_t n = ring.size() - 1;  // edges i: ring[i] -> ring[i+1]
  for (size_t i = 0; i < n; ++i)
    for (size_t j = i + 1; j < n; ++j)
      if (ring[i] == ring[j])
        return fail("vertex " + std::to_string(i) + " repeated at " + std::to_string(j) + " (" +
                    std::to_string(ring[i].x) + "," + std::to_string(ring[i].y) + ")");
  for (size_t i = 0; i < n; ++i) {
    const ContourPoint &a = ring[i], &b = ring[i + 1];
    for (size_t j = i + 1; j < n; ++j) {
      const ContourPoint &c = ring[j], &d = ring[j + 1];
      const bool next = j == i + 1, wrap = i == 0 && j == n - 1;
      if (next || wrap) {
        // Consecutive edges share one vertex; they must not fold back over each other.
        const ContourPoint& far = next ? d : c;        // the other edge's far end
        const ContourPoint& own_far = next ? a : b;   // this edge's far end
        const ContourPoint& shared = next ? b : a;
        if (orientation(own_far, shared, far) == 0 && on_segment(far, own_far, shared))
          return fail("edges " + std::to_string(i) + " and " + std::to_string(j) + " fold back");
        if (orientation(own_far, shared, far) == 0 && on_segment(own_far, shared, far))
          return fail("edges " + std::to_string(i) + " and " + std::to_string(j) + " fold back");
        continue;
      }
      if (segments_meet(a, b, c, d))
        return fail("edges " + std::to_string(i) + " and " + std::to_string(j) + " intersect");
    }
  }
  long double area = 0;
  for (size_t i = 0; i < n; ++i)
    area += static_cast<long double>(ring[i].x) * ring[i + 1].y - static_cast<long double>(ring[i + 1].x) * ring[i].y;
  if (area == 0) return fail("zero area");
  return true;
}

}  // namespace nucleisam::test

namespace nucleisam::test {

void draw_stained_pixel(uint8_t* rgb, const double stains[2][3], double h, double e) {
  for (int c = 0; c < 3; ++c) {
    const double level = std::round(256 * std::exp(-(h * stains[0][c] + e * stains[1][c])) - 1);
    rgb[c] = static_cast<uint8_t>(std::clamp(level, 0.0, 255.0));
  }
}

StainedTissue stained_tissue(const double stains[2][3], int height, int width, uint64_t seed, double h_scale,
                             double e_scale) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0, 1);
  StainedTissue t{Image(height, width, 3), {}, {}};
  for (int64_t i = 0; i < int64_t{height} * width; ++i) {
    double h = 0, e = 0;
    switch (i % 4) {
      case 1: h = 0.5 + 1.5 * u(rng); break;
      case 2: e = 0.5 + u(rng); break;
      case 3: h = 0.2 + 1.3 * u(rng), e = 0.3 + 0.8 * u(rng); break;
      default: break;
    }
    t.h.push_back(h * h_scale);
    t.e.push_back(e * e_scale);
    draw_stained_pixel(&t.image.data[3 * i], stains, t.h.back(), t.e.back());
  }
  return t;
}

std::string killed_writer_temporary(const std::string& target) {
  int pipe_fd[2];
  if (::pipe(pipe_fd) != 0) throw std::runtime_error("pipe failed");
  const pid_t child = ::fork();
  if (child < 0) throw std::runtime_error("fork failed");
  if (child == 0) {
    ::close(pipe_fd[0]);
    AtomicFile f(target);
    std::ofstream(f.temp_path()) << "half";
    const std::string name = f.temp_path();
    (void)!::write(pipe_fd[1], name.data(), name.size());
    ::close(pipe_fd[1]);
    ::kill(::getpid(), SIGKILL);
  }
  ::close(pipe_fd[1]);
  char buf[4096];
  const ssize_t n = ::read(pipe_fd[0], buf, sizeof buf);
  ::close(pipe_fd[0]);
  int status = 0;
  ::waitpid(child, &status, 0);
  if (!WIFSIGNALED(status) || n <= 0) throw std::runtime_error("the writer of " + target + " was not killed");
  return std::string(buf, static_cast<size_t>(n));
}

}  // namespace nucleisam::test
