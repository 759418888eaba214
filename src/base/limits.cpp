// Checks shared by the readers of untrusted input (limits.h) and the one output-name guard
// (output_path.h).
#include "nucleisam/limits.h"

#include <filesystem>

#include "nucleisam/errors.h"
#include "nucleisam/output_path.h"

namespace nucleisam {
namespace limits {

void check_json_depth(const std::string& text, const std::string& name) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth)
        throw IoError(name + ": JSON nests deeper than " + std::to_string(kMaxJsonDepth) +
                      " levels (limit kMaxJsonDepth; corrupt or hostile file)");
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
}

}  // namespace limits

std::string safe_file_name(const std::string& name) {
  std::string out;
  out.reserve(name.size());
  for (char ch : name) {
    const auto c = static_cast<unsigned char>(ch);
    out.push_back(c < 0x20 || c == 0x7f || c == '/' || c == '\\' ? '_' : ch);
  }
  if (out.size() > limits::kMaxOutputNameBytes) {
    size_t cut = limits::kMaxOutputNameBytes;
    // Back up over UTF-8 continuation bytes so no character is split.
    while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xC0) == 0x80) --cut;
    out.resize(cut);
  }
  if (out.empty() || out == "." || out == "..") out = "_";
  return out;
}

std::string output_path_inside(const std::string& out_dir, const std::string& derived_name) {
  const auto refuse = [&](const std::string& why) -> std::string {
    std::string shown;
    for (char c : derived_name.substr(0, 80)) shown.push_back(static_cast<unsigned char>(c) < 0x20 ? '?' : c);
    throw IoError(out_dir + ": refusing to write \"" + shown + "\" there (" + why + ")");
  };
  if (derived_name.empty()) return refuse("empty name");
  if (derived_name == "." || derived_name == "..") return refuse("not a file name");
  if (derived_name.find('/') != std::string::npos || derived_name.find('\\') != std::string::npos)
    return refuse("a folder separator would leave the output folder");
  if (derived_name.find('\0') != std::string::npos) return refuse("NUL byte in the name");
  if (derived_name.size() > 255) return refuse("name longer than 255 bytes, the file system's limit");
  return (std::filesystem::path(out_dir) / derived_name).string();
}

std::string output_stem(const std::string& input_path) {
  return safe_file_name(std::filesystem::path(input_path).stem().string());
}

std::string output_stem_below(const std::string& root, const std::string& input_path) {
  std::filesystem::path base = std::filesystem::path(root).lexically_normal();
  if (!base.has_filename()) base = base.parent_path();  // "in/" as "in"
  const std::filesystem::path relative =
      std::filesystem::path(input_path).lexically_normal().lexically_relative(base);
  if (relative.empty() || *relative.begin() == "..") throw IoError(input_path + ": not below " + root);
  std::string stem;
  for (const auto& part : relative.parent_path()) {
    if (part == ".") continue;
    stem += safe_file_name(part.string()) + "/";
  }
  return stem + output_stem(input_path);
}

std::string stem_output_path(const std::string& out_dir, const std::string& stem, const std::string& suffix,
                             bool hidden) {
  std::string dir = out_dir;
  size_t start = 0;
  for (size_t slash; (slash = stem.find('/', start)) != std::string::npos; start = slash + 1)
    dir = output_path_inside(dir, stem.substr(start, slash - start));
  return output_path_inside(dir, (hidden ? "." : "") + stem.substr(start) + suffix);
}

}  // namespace nucleisam
