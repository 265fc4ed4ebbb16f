"""K-quant dequantisation goldens from an independent implementation: the
`gguf` Python package's numpy dequantisers (gguf.quants.dequantize), which
tpp's C++ decoding does not share a line with.

For each of Q4_K, Q5_K and Q6_K: 12 blocks of 256 weights with random bytes
for the quants, scales and high bits, and f16 super-block scales drawn from a
realistic range (both signs for d and dmin, and one all-zero block), written as
  tests/golden/kquants/<type>.blocks  the raw blocks, as stored in GGUF
  tests/golden/kquants/<type>.f32     the package's dequantised values (LE f32)

Needs numpy and the gguf package. Run: python3 tools/golden/gen_kquants.py
"""
import os

import numpy as np
from gguf.quants import GGMLQuantizationType, dequantize

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "golden", "kquants")
N_BLOCKS = 12

# (name, type, bytes per block, byte offsets of its f16 scales)
CASES = [
    ("q4_k", GGMLQuantizationType.Q4_K, 144, [0, 2]),
    ("q5_k", GGMLQuantizationType.Q5_K, 176, [0, 2]),
    ("q6_k", GGMLQuantizationType.Q6_K, 210, [208]),
]


def main():
    rng = np.random.default_rng(20261207)
    os.makedirs(OUT, exist_ok=True)
    for name, qtype, size, scale_at in CASES:
        blocks = rng.integers(0, 256, size=(N_BLOCKS, size), dtype=np.uint8)
        for b in range(N_BLOCKS):
            for at in scale_at:
                v = np.float16(rng.uniform(1e-4, 5e-2) * rng.choice([-1.0, 1.0]))
                blocks[b, at:at + 2] = np.frombuffer(v.tobytes(), dtype=np.uint8)
        blocks[N_BLOCKS - 1, :] = 0  # an all-zero block decodes to zeros
        values = dequantize(blocks.reshape(-1), qtype).astype("<f4").reshape(-1)
        assert values.size == N_BLOCKS * 256 and np.all(np.isfinite(values))
        blocks.tofile(os.path.join(OUT, name + ".blocks"))
        values.tofile(os.path.join(OUT, name + ".f32"))
        print(name, blocks.nbytes, "bytes of blocks,", values.size, "values")


if __name__ == "__main__":
    main()
