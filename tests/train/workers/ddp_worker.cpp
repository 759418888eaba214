// One process of the data-parallel trainer tests (test_train_distributed starts several): trains
// a tiny network on synthetic nuclei, as rank RANK of WORLD_SIZE when those are set (a single
// process otherwise), and writes the network's final parameters and buffers.
//   ddp_worker <run dir> <micro-batches> <weights out> [stop after step] [exit code after stopping]
#include <chrono>
#include <cstdlib>
#include <iostream>

#include "nucleisam/train/distributed.h"
#include "nucleisam/train/trainer.h"
#include "nucleisam/weights/state_dict.h"
#include "train/synthetic_nuclei.h"

using namespace nucleisam;

int main(int argc, char** argv) {
  if (argc < 4) {
    std::cerr << "usage: ddp_worker <run dir> <micro-batches> <weights out> [stop after step] [exit code]\n";
    return 2;
  }
  try {
    torch::set_num_threads(1);
    train::TrainConfig c;
    c.card.name = "ddp";
    c.card.arch = "unet";
    c.card.options = {{"width", "4"}, {"depth", "3"}};
    c.card.tile_size = 32;
    c.augment.crop_size = 32;
    c.augment.color_probability = 0.5;
    c.augment.rotate_probability = 0.5;
    c.epochs = 2;
    c.batch_size = 4;
    c.micro_batches = std::atoi(argv[2]);
    c.crops_per_image = 1;
    c.lr = 3e-3;
    c.schedule.warmup_steps = 2;
    c.loader_threads = 0;
    c.seed = 7;
    c.checkpoint_every = 0;
    train::DataParallel parallel;
    if (std::getenv("WORLD_SIZE"))
      parallel.group = std::make_shared<train::ProcessGroup>(train::distributed_setup_from_environment(),
                                                             std::chrono::seconds(60));
    fixtures::SyntheticNuclei data(8, 40);
    train::Trainer trainer(c, data, argv[1], {}, {}, parallel);
    const int64_t stop = argc > 4 ? std::atoll(argv[4]) : 0;
    trainer.run(stop);
    if (argc > 5) std::_Exit(std::atoi(argv[5]));  // a crash: no clean shutdown of the group
    weights::write_safetensors(argv[3], weights::state_of(*trainer.network()));
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "ddp_worker: " << e.what() << '\n';
    return 1;
  }
}
