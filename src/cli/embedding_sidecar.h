// Where `nucleisam sam-embed` writes, and `nucleisam sam --embedding` reads, an embedding's JSON
// sidecar: E.npy -> E.json. One definition so the writer and the reader cannot disagree.
#pragma once

#include <filesystem>
#include <string>

namespace nucleisam::cli {

inline std::string embedding_sidecar_path(const std::string& npy) {
  return std::filesystem::path(npy).replace_extension(".json").string();
}

}  // namespace nucleisam::cli
