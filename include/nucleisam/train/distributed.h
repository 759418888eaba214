// Multi-process data-parallel training on PyTorch's own distributed engine (c10d): one process
// per device or CPU group, a TCP store for the rendezvous and a Gloo process group for the
// collectives. Configured the way PyTorch launchers do it (torchrun, Slurm, Kubernetes), through
// environment variables. See docs/training.md, "Several processes".
#pragma once

#include <torch/torch.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace nucleisam::train {

struct DistributedSetup {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  std::string master_addr;  // host of rank 0 (runs the TCP store)
  int master_port = 0;
  std::string source;       // "torchrun" (RANK/WORLD_SIZE) or "slurm" (SLURM_PROCID/SLURM_NTASKS)
};

// Reads RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT (as torchrun and most launchers
// set them); where RANK / WORLD_SIZE are absent, Slurm's SLURM_PROCID / SLURM_NTASKS /
// SLURM_LOCALID. MASTER_ADDR and MASTER_PORT are always required. OptionError naming the variable
// for a missing or malformed value. `getenv` is injectable for tests.
DistributedSetup distributed_setup_from_environment(
    const std::function<const char*(const char*)>& getenv = [](const char* name) { return std::getenv(name); });

// A c10d Gloo process group. Collectives are blocking; a peer that dies or stops answering for
// `timeout` makes every other rank's next collective throw DistributedError (no hang).
class ProcessGroup {
 public:
  ProcessGroup(const DistributedSetup& setup, std::chrono::milliseconds timeout);
  ~ProcessGroup();
  ProcessGroup(const ProcessGroup&) = delete;
  ProcessGroup& operator=(const ProcessGroup&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  // Every rank's tensors become rank `root`'s (in place; same shapes and dtypes on every rank).
  void broadcast(const std::vector<torch::Tensor>& tensors, int root = 0);
  // Elementwise sum over the ranks, in place. Float tensors of one dtype are packed into flat
  // buckets of at most `bucket_bytes`, all buckets in flight at once, then unpacked.
  void all_reduce_sum(const std::vector<torch::Tensor>& tensors, int64_t bucket_bytes = 25 << 20);
  void barrier();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int rank_ = 0, size_ = 1;
};

// What the trainer needs to run as one rank of several: the group and how a global batch is
// split. A global batch of `batch_size` samples is cut into world_size * micro_batches shards
// of equal size; rank r processes shards r * micro_batches ... (r + 1) * micro_batches - 1.
struct DataParallel {
  std::shared_ptr<ProcessGroup> group;  // null: a single process
  int rank() const { return group ? group->rank() : 0; }
  int world_size() const { return group ? group->size() : 1; }
};

}  // namespace nucleisam::train
