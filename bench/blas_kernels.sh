#!/usr/bin/env bash
# OpenBLAS's own kernel choice against the one nucleisam asks for (include/nucleisam/threads.h),
# alternated in rounds: the 512 x 768 x 768 fp32 product of the --version probe, and the random-weight
# ViT-B encoder in fp32 with every linear layer on the BLAS (NUCLEISAM_FP32_GEMM=blas), so that the
# BLAS kernels are what differs. On a CPU OpenBLAS knows, both rows name the same kernels.
#
#   bench/blas_kernels.sh [rounds] [threads] [encoder input size]
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-2} T=${2:-2} SIZE=${3:-256}
B=${NUCLEISAM:-build/nucleisam}
L=${BENCH_SAM_LATENCY:-build/bench/bench_sam_latency}
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-), $T threads, load $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$ROUNDS"); do
  for mode in openblas nucleisam; do
    if [ "$mode" = openblas ]; then export NUCLEISAM_NO_BLAS_REEXEC=1; else unset NUCLEISAM_NO_BLAS_REEXEC; fi
    kernels=$("$B" --version | sed -n 's/^BLAS: //p')
    probe=$(NUCLEISAM_FP32_GEMM= "$B" --threads "$T" --version | sed -n 's/.*probe: \(.*\))$/\1/p')
    encoder=$(NUCLEISAM_FP32_GEMM=blas "$L" --threads "$T" --runs 3 --models vit_b --sizes "$SIZE" --precisions fp32 |
      awk '/^\| vit_b/ {print; exit}')
    echo "round $r | $mode | $kernels | probe: $probe | $encoder"
  done
done
