#!/usr/bin/env bash
# The main job on an embedded default: build tpp, create a small
# Transformer++ (GQA, RoPE, SwiGLU, RMSNorm, tied embeddings), generate from it
# with the KV cache, and measure it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh release
tpp=build/release/tpp
out=build/demo
echo "== tpp config --check configs/tiny.json"
$tpp config --check configs/tiny.json
echo "== tpp init"
$tpp init --config configs/tiny.json --out "$out/tiny" --seed 1
echo "== tpp generate (greedy, token ids; the model is untrained, so expect repetition)"
$tpp generate -m "$out/tiny" --prompt-ids 72,101,108,108,111 -n 16 --temp 0 --ids --stats
echo "== tpp kv-cache: the seeds' figures (1,024 tokens, 16-bit)"
for c in llama2_7b mistral_7b llama2_7b_mqa; do
  printf '%-16s ' "$c"; $tpp kv-cache --config "configs/$c.json" --tokens 1024 --dtype f16 | head -n 1
done
echo "== tpp bench"
$tpp bench -m "$out/tiny" -p 128 -n 32
