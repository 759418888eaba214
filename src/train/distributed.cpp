// c10d process group for data-parallel training (see distributed.h).
#include "nucleisam/train/distributed.h"

#include <csignal>

#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <limits>

#include "nucleisam/errors.h"

namespace nucleisam::train {
namespace {

int read_int(const std::function<const char*(const char*)>& getenv, const char* name, int min, int max,
             bool required, int fallback) {
  const char* text = getenv(name);
  if (!text || !*text) {
    if (required) throw OptionError(std::string("distributed training: the environment variable ") + name + " is not set");
    return fallback;
  }
  char* end = nullptr;
  errno = 0;
  const long v = std::strtol(text, &end, 10);
  if (errno || end == text || *end || v < min || v > max)
    throw OptionError(std::string("distributed training: ") + name + "=" + text + " is not an integer from " +
                      std::to_string(min) + " to " + std::to_string(max));
  return static_cast<int>(v);
}

template <typename F>
auto guarded(const char* what, F&& f) {
  try {
    return f();
  } catch (const c10::Error& e) {
    const std::string msg = e.what_without_backtrace();
    throw DistributedError(std::string("distributed training: ") + what + " failed (" + msg.substr(0, msg.find('\n')) +
                           "); another process probably stopped or cannot be reached");
  } catch (const DistributedError&) {
    throw;
  } catch (const std::exception& e) {
    throw DistributedError(std::string("distributed training: ") + what + " failed (" + e.what() +
                           "); another process probably stopped or cannot be reached");
  }
}

}  // namespace

DistributedSetup distributed_setup_from_environment(const std::function<const char*(const char*)>& getenv) {
  DistributedSetup s;
  const int max_ranks = 1 << 20;
  if (getenv("WORLD_SIZE") || getenv("RANK")) {
    s.source = "torchrun";
    s.world_size = read_int(getenv, "WORLD_SIZE", 1, max_ranks, true, 1);
    s.rank = read_int(getenv, "RANK", 0, max_ranks, true, 0);
    s.local_rank = read_int(getenv, "LOCAL_RANK", 0, max_ranks, false, 0);
  } else if (getenv("SLURM_NTASKS") || getenv("SLURM_PROCID")) {
    s.source = "slurm";
    s.world_size = read_int(getenv, "SLURM_NTASKS", 1, max_ranks, true, 1);
    s.rank = read_int(getenv, "SLURM_PROCID", 0, max_ranks, true, 0);
    s.local_rank = read_int(getenv, "SLURM_LOCALID", 0, max_ranks, false, 0);
  } else {
    throw OptionError(
        "distributed training: set WORLD_SIZE and RANK (torchrun and most launchers do), or run under Slurm (srun sets "
        "SLURM_NTASKS and SLURM_PROCID)");
  }
  if (s.rank >= s.world_size)
    throw OptionError("distributed training: rank " + std::to_string(s.rank) + " is not below the world size " +
                      std::to_string(s.world_size));
  const char* addr = getenv("MASTER_ADDR");
  if (!addr || !*addr)
    throw OptionError("distributed training: the environment variable MASTER_ADDR (the host of rank 0) is not set");
  s.master_addr = addr;
  s.master_port = read_int(getenv, "MASTER_PORT", 1, 65535, true, 0);
  return s;
}

struct ProcessGroup::Impl {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> group;
  std::chrono::milliseconds timeout;
};

ProcessGroup::ProcessGroup(const DistributedSetup& setup, std::chrono::milliseconds timeout)
    : impl_(std::make_unique<Impl>()), rank_(setup.rank), size_(setup.world_size) {
  impl_->timeout = timeout;
  // A rank that dies closes its sockets; the next write to them would raise SIGPIPE and kill this
  // process silently (exit 141) instead of failing the collective with an error naming the cause.
  std::signal(SIGPIPE, SIG_IGN);
  guarded("the rendezvous with the other processes", [&] {
    c10d::TCPStoreOptions o;
    o.port = static_cast<std::uint16_t>(setup.master_port);
    o.isServer = setup.rank == 0;
    o.numWorkers = static_cast<std::size_t>(setup.world_size);
    o.waitWorkers = true;
    o.timeout = timeout;
    impl_->store = c10::make_intrusive<c10d::TCPStore>(setup.master_addr, o);
    auto options = c10d::ProcessGroupGloo::Options::create(timeout);
    const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");  // as in PyTorch
    options->devices.push_back(ifname && *ifname ? c10d::ProcessGroupGloo::createDeviceForInterface(ifname)
                                                 : c10d::ProcessGroupGloo::createDefaultDevice());
    impl_->group = c10::make_intrusive<c10d::ProcessGroupGloo>(impl_->store, setup.rank, setup.world_size, options);
    return 0;
  });
}

ProcessGroup::~ProcessGroup() = default;

void ProcessGroup::broadcast(const std::vector<torch::Tensor>& tensors, int root) {
  if (size_ == 1 || tensors.empty()) return;
  guarded("a broadcast", [&] {
    for (const torch::Tensor& t : tensors) {
      // Gloo needs dense contiguous tensors: go through a contiguous copy where needed.
      std::vector<at::Tensor> one{t.is_contiguous() ? t : t.contiguous()};
      c10d::BroadcastOptions o;
      o.rootRank = root;
      o.timeout = impl_->timeout;
      impl_->group->broadcast(one, o)->wait(impl_->timeout);
      if (!one[0].is_same(t)) t.copy_(one[0]);
    }
    return 0;
  });
}

void ProcessGroup::all_reduce_sum(const std::vector<torch::Tensor>& tensors, int64_t bucket_bytes) {
  if (size_ == 1 || tensors.empty()) return;
  guarded("a gradient all-reduce", [&] {
    // Buckets of consecutive tensors of one dtype, each packed into one flat tensor.
    struct Bucket {
      std::vector<size_t> members;
      torch::Tensor flat;
      c10::intrusive_ptr<c10d::Work> work;
    };
    std::vector<Bucket> buckets;
    int64_t bytes = 0;
    for (size_t i = 0; i < tensors.size(); ++i) {
      const int64_t b = tensors[i].numel() * static_cast<int64_t>(tensors[i].element_size());
      if (buckets.empty() || bytes + b > bucket_bytes ||
          tensors[buckets.back().members.front()].scalar_type() != tensors[i].scalar_type()) {
        buckets.emplace_back();
        bytes = 0;
      }
      buckets.back().members.push_back(i);
      bytes += b;
    }
    c10d::AllreduceOptions o;
    o.reduceOp = c10d::ReduceOp::SUM;
    o.timeout = impl_->timeout;
    for (Bucket& bucket : buckets) {
      std::vector<torch::Tensor> parts;
      for (size_t i : bucket.members) parts.push_back(tensors[i].reshape({-1}));
      bucket.flat = torch::cat(parts);
      std::vector<at::Tensor> one{bucket.flat};
      bucket.work = impl_->group->allreduce(one, o);  // all buckets in flight at once
    }
    for (Bucket& bucket : buckets) {
      bucket.work->wait(impl_->timeout);
      int64_t offset = 0;
      for (size_t i : bucket.members) {
        const int64_t n = tensors[i].numel();
        tensors[i].copy_(bucket.flat.narrow(0, offset, n).view(tensors[i].sizes()));
        offset += n;
      }
    }
    return 0;
  });
}

void ProcessGroup::barrier() {
  if (size_ == 1) return;
  guarded("a barrier", [&] {
    c10d::BarrierOptions o;
    o.timeout = impl_->timeout;
    impl_->group->barrier(o)->wait(impl_->timeout);
    return 0;
  });
}

}  // namespace nucleisam::train
