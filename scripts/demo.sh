#!/usr/bin/env bash
# The main job on an embedded default: build tpp, install the Brown corpus,
# train a small Transformer++ (GQA, RoPE, SwiGLU, RMSNorm, tied embeddings) on
# it for a few minutes, evaluate it on held-out text, generate from it with the
# KV cache, and measure it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh release
tpp=build/release/tpp
out=build/demo
scripts/get_brown.sh data/brown.txt
echo "== tpp train: configs/tiny.json on the Brown corpus (2M tokens)"
rm -rf "$out/brown"
$tpp train --config configs/tiny.json --data data/brown.txt --out "$out/brown" \
  --tokens 2000000 --batch 16 --seq 128 --lr 2e-3 --seed 1
echo "== tpp eval: held-out Brown text (every 10th block, never trained on)"
$tpp eval -m "$out/brown" --data data/brown.txt --held-out --seq 128 --max-tokens 200000
echo "== tpp generate (temperature 0.8, with the KV cache)"
$tpp generate -m "$out/brown" -p "The jury said" -n 300 --temp 0.8 --top-p 0.95 --seed 7
echo
echo "== tpp kv-cache: the seeds' figures (1,024 tokens, 16-bit)"
for c in llama2_7b mistral_7b llama2_7b_mqa; do
  printf '%-16s ' "$c"; $tpp kv-cache --config "configs/$c.json" --tokens 1024 --dtype f16 | head -n 1
done
echo "== tpp bench"
$tpp bench -m "$out/brown" -p 128 -n 32
echo "== loss curve: $out/brown/loss.svg   metrics: $out/brown/metrics.jsonl"
