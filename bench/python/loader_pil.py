"""The Python side of bench/loader.cpp: the same decode + transform as ASG Lab's sticker loader, with PIL.

For each file of a JSONL manifest: decode every frame (as GIF/WebP players do, PIL's ImageSequence),
pick `frames` frames uniformly (round-half-up of linspace(0, F-1, frames)), composite RGBA over white,
resize to size x size with a box filter (area averaging, what INTER_AREA does when shrinking), and
convert to float32 in [0, 1]. Prints one JSON line: samples, seconds and the mean pixel value (the C++
side compares it to its own, so both are known to compute the same thing).
"""
import argparse
import json
import math
import os
import time

import numpy as np
from PIL import Image, ImageSequence


def uniform(available, frames):
    if frames == 1 or available == 1:
        return [0] * frames
    return [int(math.floor(i * (available - 1) / (frames - 1) + 0.5)) for i in range(frames)]


def load(path, frames, size):
    with Image.open(path) as im:
        decoded = [f.convert("RGBA") for f in ImageSequence.Iterator(im)]
    out = np.empty((frames, size, size, 3), dtype=np.float32)
    for i, t in enumerate(uniform(len(decoded), frames)):
        white = Image.new("RGBA", decoded[t].size, (255, 255, 255, 255))
        rgb = Image.alpha_composite(white, decoded[t]).convert("RGB").resize((size, size), Image.BOX)
        out[i] = np.asarray(rgb, dtype=np.float32) / 255.0
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--manifest", required=True)
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--rounds", type=int, default=2)
    a = p.parse_args()
    root = os.path.dirname(a.manifest)
    files = [os.path.join(root, json.loads(l)["path"]) for l in open(a.manifest) if l.strip()]
    best = None
    total = 0.0
    for _ in range(a.rounds):
        start = time.perf_counter()
        total = 0.0
        for f in files:
            total += float(load(f, a.frames, a.size).mean())
        seconds = time.perf_counter() - start
        best = seconds if best is None else min(best, seconds)
    print(json.dumps({"samples": len(files), "seconds": best, "mean": total / len(files)}))


if __name__ == "__main__":
    main()
