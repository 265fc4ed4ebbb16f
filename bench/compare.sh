#!/usr/bin/env bash
# Inference speed, tpp against llama.cpp on the same GGUF files: runs a
# llama-bench binary built elsewhere and `tpp bench` alternately, ROUNDS times
# per file, and prints each side's best tokens/s and the ratios tpp / llama.cpp.
#   bench/compare.sh LLAMA_BENCH MODEL.gguf...
# Environment: THREADS (2), PROMPT (512), GEN (64), ROUNDS (3), TPP (build/release/tpp).
# Decode is memory-bound and a shared host's bandwidth drifts: compare within
# one run, and read the roofline share tpp prints beside its tokens/s.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
if (($# < 2)); then
  echo "usage: $0 LLAMA_BENCH MODEL.gguf..." >&2
  exit 2
fi
llama_bench="$1"
shift
threads="${THREADS:-2}" prompt="${PROMPT:-512}" gen="${GEN:-64}" rounds="${ROUNDS:-3}"
tpp="${TPP:-$root/build/release/tpp}"
[ -x "$llama_bench" ] || { echo "error: $llama_bench is not an executable llama-bench" >&2; exit 2; }
[ -x "$tpp" ] || { echo "error: $tpp is not built (scripts/build.sh release)" >&2; exit 2; }
for m in "$@"; do
  [ -f "$m" ] || { echo "error: $m: no such file" >&2; exit 2; }
done

results="$(mktemp)"
trap 'rm -f "$results"' EXIT
for ((r = 1; r <= rounds; r++)); do
  for m in "$@"; do
    echo "round $r/$rounds: $m" >&2
    "$llama_bench" -m "$m" -t "$threads" -p "$prompt" -n "$gen" -r 1 -o json |
      python3 -c 'import json, sys; print(json.dumps({"file": sys.argv[1], "side": "llama.cpp", "tests": json.load(sys.stdin)}))' "$m" >>"$results"
    "$tpp" bench -m "$m" -t "$threads" -p "$prompt" -n "$gen" -r 1 -o json |
      python3 -c 'import json, sys; print(json.dumps({"file": sys.argv[1], "side": "tpp", "run": json.load(sys.stdin)}))' "$m" >>"$results"
  done
done

python3 - "$results" "$prompt" "$gen" <<'PY'
import json, os, sys
path, prompt, gen = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
best = {}  # (file, side, test) -> best tokens/s over the rounds
extra = {}  # file -> tpp's best roofline share and matmul GOP/s
def keep(key, v):
    best[key] = max(best.get(key, 0.0), v)
for line in open(path):
    e = json.loads(line)
    f = e["file"]
    if e["side"] == "llama.cpp":
        for t in e["tests"]:
            test = "pp" if t["n_gen"] == 0 else "tg"
            keep((f, "llama.cpp", test), t["avg_ts"])
    else:
        run = e["run"]
        keep((f, "tpp", "pp"), run["prefill_tokens_per_s"])
        keep((f, "tpp", "tg"), run["decode_tokens_per_s"])
        x = extra.setdefault(f, {"dtype": run["dtype"], "gops": 0.0, "roofline": 0.0})
        x["gops"] = max(x["gops"], run["prefill_matmul_gops"])
        x["roofline"] = max(x["roofline"], run["roofline"])
print(f"| file | dtype | llama.cpp pp{prompt} | tpp pp{prompt} | ratio | llama.cpp tg{gen} | tpp tg{gen} | ratio "
      f"| tpp prefill GOP/s | tpp decode / roofline |")
print("|---|---|---|---|---|---|---|---|---|---|")
for f, x in extra.items():
    cells = []
    for test in ("pp", "tg"):
        a, b = best.get((f, "llama.cpp", test), 0.0), best.get((f, "tpp", test), 0.0)
        cells += [f"{a:.1f}", f"{b:.1f}", f"{b / a:.2f}" if a else "—"]
    print(f"| {os.path.basename(f)} | {x['dtype']} | " + " | ".join(cells) + f" | {x['gops']:.0f} | {100 * x['roofline']:.0f} % |")
PY
