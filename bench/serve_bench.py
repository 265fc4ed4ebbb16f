#!/usr/bin/env python3
"""Throughput of a running `tpp serve` against the number of concurrent streams.

Usage: bench/serve_bench.py URL [--streams 1,2,4,8,16] [--tokens 64] [--prompt 32]

Each stream sends one streamed completion (a prompt of token ids, greedy, the
end token banned so every reply has exactly --tokens tokens, logprobs on so
that every token arrives as an event, even one without text) at the same time
as the others. Prints, per number of streams: aggregate generated tokens/s
over the wall time, per-stream tokens/s, and time to first token (median and
worst). Uses only Python's standard library.
"""
import argparse
import json
import statistics
import threading
import time
import urllib.request


def one(url, prompt, tokens, out, i):
    body = json.dumps({"prompt": prompt, "max_tokens": tokens, "temperature": 0, "stream": True,
                       "logit_bias": {"257": -100}, "logprobs": 0,
                       "stream_options": {"include_usage": True}}).encode()
    req = urllib.request.Request(url + "/v1/completions", body, {"Content-Type": "application/json"})
    t0 = time.perf_counter()
    first = None
    usage = None
    with urllib.request.urlopen(req) as r:
        for line in r:
            line = line.strip()
            if not line.startswith(b"data: ") or line == b"data: [DONE]":
                continue
            j = json.loads(line[6:])
            if j.get("usage"):
                usage = j["usage"]
            elif first is None and j["choices"]:
                first = time.perf_counter() - t0
    out[i] = (first, time.perf_counter() - t0, usage["completion_tokens"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("--streams", default="1,2,4,8,16")
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--prompt", type=int, default=32)
    a = ap.parse_args()
    print("| streams | aggregate tokens/s | per stream tokens/s | TTFT median (s) | TTFT max (s) |")
    print("|---:|---:|---:|---:|---:|")
    for n in [int(x) for x in a.streams.split(",")]:
        out = [None] * n
        threads = [threading.Thread(target=one, args=(a.url, [(7 * i + 13 * k) % 250 for i in range(a.prompt)],
                                                        a.tokens, out, k)) for k in range(n)]
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
