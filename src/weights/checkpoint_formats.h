// Internal entry points of the checkpoint readers/writers, shared by checkpoint*.cpp and tests.
#pragma once

#include <torch/torch.h>

#include <map>
#include <memory>
#include <string>

#include "nucleisam/weights/state_dict.h"
#include "weights/mapped_file.h"

namespace nucleisam::weights {

// A 1-D tensor of `numel` elements of `dtype` over file bytes [offset, ...). Aliases the mapping
// (keeping it alive) when the address is aligned for the type, else copies. The caller has
// checked the range lies inside the file.
torch::Tensor tensor_over_mapping(const std::shared_ptr<const MappedFile>& file, uint64_t offset,
                                  int64_t numel, torch::ScalarType dtype);

// elements * element_size with overflow detection; throws CheckpointError("<where>: ...").
uint64_t checked_bytes(int64_t elements, size_t element_size, const std::string& where);

bool looks_like_safetensors(const MappedFile& file);
StateDict read_pth(const std::shared_ptr<const MappedFile>& file);
StateDict read_safetensors(const std::shared_ptr<const MappedFile>& file,
                           std::map<std::string, std::string>* metadata);

// write_pth with a switch that forces ZIP64 records on every entry, so tests can check the
// > 4 GB layout on small files.
void write_pth_archive(const std::string& path, const StateDict& state, bool force_zip64);

}  // namespace nucleisam::weights
