#!/usr/bin/env python3
"""Throughput of a running `tpp serve` against the number of concurrent streams.

Usage: bench/serve_bench.py URL [--streams 1,2,4,8,16] [--tokens 64] [--prompt 32] [--eos ID] [--logprobs]

Each stream sends one streamed completion (a prompt of token ids, greedy, the
end token --eos banned so every reply has exactly --tokens tokens) at the same
time as the others; time to first token is the first chunk with text (with
--logprobs, the first chunk: for models whose tokens may have no text). Prints, per number of streams: aggregate generated tokens/s
over the wall time, per-stream tokens/s, and time to first token (median and
worst). Uses only Python's standard library.
"""
import argparse
import json
import statistics
import threading
import time
import urllib.request


def one(url, prompt, tokens, eos, logprobs, out, i):
    req = {"prompt": prompt, "max_tokens": tokens, "temperature": 0, "stream": True,
           "logit_bias": {str(eos): -100}, "stream_options": {"include_usage": True}}
    if logprobs:
        req["logprobs"] = 0
    body = json.dumps(req).encode()
    req = urllib.request.Request(url + "/v1/completions", body, {"Content-Type": "application/json"})
    t0 = time.perf_counter()
    first = first_any = None
    usage = None
    with urllib.request.urlopen(req) as r:
        for line in r:
            line = line.strip()
            if not line.startswith(b"data: ") or line == b"data: [DONE]":
                continue
            j = json.loads(line[6:])
            if first_any is None and j["choices"]:
                first_any = time.perf_counter() - t0
            if first is None and j["choices"] and (logprobs or j["choices"][0]["text"]):
                first = time.perf_counter() - t0
            if j.get("usage"):
                usage = j["usage"]
    # A reply whose every chunk is empty (a server holding back bytes that
    # are not UTF-8): its first chunk.
    out[i] = (first if first is not None else first_any, time.perf_counter() - t0, usage["completion_tokens"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("--streams", default="1,2,4,8,16")
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--prompt", type=int, default=32)
    ap.add_argument("--eos", type=int, default=257, help="the end token to ban (257: tpp's byte-level models)")
    ap.add_argument("--logprobs", action="store_true")
    a = ap.parse_args()
    print("| streams | aggregate tokens/s | per stream tokens/s | TTFT median (s) | TTFT max (s) |")
    print("|---:|---:|---:|---:|---:|")
    for n in [int(x) for x in a.streams.split(",")]:
        out = [None] * n
        threads = [threading.Thread(target=one, args=(a.url, [(7 * i + 13 * k) % 250 for i in range(a.prompt)],
                                                        a.tokens, a.eos, a.logprobs, out, k)) for k in range(n)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        total = sum(o[2] for o in out)
        ttft = [o[0] for o in out]
        per = statistics.mean(o[2] / o[1] for o in out)
        print(f"| {n} | {total / wall:.1f} | {per:.1f} | {statistics.median(ttft):.3f} | {max(ttft):.3f} |")


if __name__ == "__main__":
    main()
