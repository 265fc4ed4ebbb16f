#!/usr/bin/env bash
# Training throughput, tpp against PyTorch (Debian python3-torch, CPU), same
# model, batch and threads, run back to back: prints both JSON lines and the
# ratio of tokens/s. PyTorch runs with OPENBLAS_CORETYPE=SKYLAKEX so its
# OpenBLAS uses AVX-512 kernels on this CPU, as tpp does.
# bf16 runs both with bf16 compute (tpp --bf16, PyTorch autocast to bf16).
#   bench/train_vs_torch.sh [small|smollm2] [threads] [f32|bf16]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
shape="${1:-small}"
threads="${2:-2}"
dtype="${3:-f32}"
case "$dtype" in
  f32) flag="" ;;
  bf16) flag="--bf16" ;;
  *) echo "usage: $0 [small|smollm2] [threads] [f32|bf16]" >&2; exit 2 ;;
esac
case "$shape" in
  small) args="--d-model 256 --n-layers 6 --n-heads 8 --n-kv-heads 4 --d-ff 768 --vocab 260 --batch 16 --seq 256"
         steps=10 ;;
  smollm2) args="--d-model 576 --n-layers 30 --n-heads 9 --n-kv-heads 3 --d-ff 1536 --vocab 49152 --batch 4 --seq 256"
           steps=3 ;;
  *) echo "usage: $0 [small|smollm2] [threads] [f32|bf16]" >&2; exit 2 ;;
esac
python=/usr/bin/python3
"$python" -c "import torch" 2>/dev/null || { echo "SKIP: python3-torch is not installed"; exit 0; }
tpp_line=$("$root/build/release/bench/tpp_bench_train" $args --steps "$steps" --threads "$threads" $flag)
torch_line=$(OPENBLAS_CORETYPE=SKYLAKEX "$python" "$root/bench/train_torch.py" $args --steps "$steps" \
  --warmup-steps 1 --threads "$threads" $flag)
echo "$tpp_line"
echo "$torch_line"
"$python" - "$tpp_line" "$torch_line" <<'PY'
import json, sys
a, b = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"{a['dtype']} tokens/s: tpp {a['tokens_per_s']:.0f}, pytorch {b['tokens_per_s']:.0f}, "
      f"ratio tpp / pytorch = {a['tokens_per_s'] / b['tokens_per_s']:.2f}; "
      f"tpp at {100 * a['share_of_peak']:.0f} % of its measured {a['dtype']} matmul rate ({a['matmul_peak_gflops']:.0f} GFLOP/s)")
PY
