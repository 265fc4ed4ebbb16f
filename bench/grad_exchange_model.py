#!/usr/bin/env python3
"""The cost of data-parallel training's gradient exchange on a network (docs/training.md).

Per step each rank sends, with --grad-accum K micro-batches per rank and P ranks,
(K + 1) (P - 1) / P x 4 N bytes: K fixed-order reduce-scatters (MPI_Alltoallv) and one
MPI_Allgatherv of N f32 gradients (--grad-sum local: one reduce-scatter whatever K); a ring
all-reduce sends 2 (P - 1) / P x 4 N. Time =
bytes / link bandwidth + a latency per rank-to-rank message. The step's compute comes from
a measured training throughput (tokens/s of one rank), scaled by parameters for other shapes.

    bench/grad_exchange_model.py [--gbit 25] [--latency-us 25] [--tokens 4096] [--tps 274] [--accum K] [--local]
"""
import argparse

SHAPES = {"135M (configs/smollm2_135m.json)": 134_515_008, "1B (configs/llama3_2_1b.json)": 1_235_814_400}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gbit", type=float, default=25.0, help="link bandwidth, Gbit/s each way")
    ap.add_argument("--latency-us", type=float, default=25.0, help="per-message latency")
    ap.add_argument("--tokens", type=int, default=4096, help="tokens per rank per step")
    ap.add_argument("--tps", type=float, default=274.0,
                    help="measured tokens/s of the 135M shape on one rank (2 Zen 5 cores)")
    ap.add_argument("--cores", type=int, nargs="+", default=[2, 16],
                    help="cores per rank; compute scales linearly from the measured 2")
    ap.add_argument("--accum", type=int, default=1, help="--grad-accum per rank")
    ap.add_argument("--local", action="store_true", help="--grad-sum local: one exchange per step whatever K")
    args = ap.parse_args()
    bw = args.gbit * 1e9 / 8
    print(f"| shape | ranks | MB sent per rank per step | ring all-reduce MB | exchange s | "
          + " | ".join(f"step s, {c} cores | share, {c} cores" for c in args.cores) + " |")
    print("|---|---:|---:|---:|---:|" + "---:|---:|" * len(args.cores))
    for name, n in SHAPES.items():
        for p in (8, 64):
            exchanges = 2 if args.local else args.accum + 1
            sent = exchanges * (p - 1) / p * 4 * n
            ring = 2 * (p - 1) / p * 4 * n
            bucket = max(1 << 22, p << 18)
            buckets = -(-n // bucket)
            messages = exchanges * (p - 1) * buckets
            t = sent / bw + messages * args.latency_us * 1e-6
            cells = []
            for c in args.cores:
                tps = args.tps * (134_515_008 / n) * (c / 2)
                compute = args.tokens / tps
                cells += [f"{compute:.1f}", f"{100 * t / (compute + t):.1f} %"]
            print(f"| {name} | {p} | {sent / 1e6:,.0f} | {ring / 1e6:,.0f} | {t:.2f} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
