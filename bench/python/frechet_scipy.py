#!/usr/bin/env python3
"""The Python side of bench/frechet.cpp: pytorch-fid's Fréchet distance (numpy.cov, scipy.linalg.sqrtm, its
1e-6 retry and imaginary-part check) on two feature files, timed from the feature matrices to the number.

    frechet_scipy.py A.npy B.npy ROUNDS   ->  one JSON line {"seconds": [...], "value": FD}
"""
import json
import os
import sys
import time

import numpy as np

# The same pytorch-fid route the Fréchet tests compare against.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts", "fixtures"))
from frechet_reference import pytorch_fid_distance  # noqa: E402


def main():
    x = np.load(sys.argv[1]).astype(np.float64)
    y = np.load(sys.argv[2]).astype(np.float64)
    seconds, value = [], None
    for _ in range(int(sys.argv[3])):
        start = time.perf_counter()
        value = pytorch_fid_distance(x, y, bias=False)
        seconds.append(time.perf_counter() - start)
    print(json.dumps({"seconds": seconds, "value": value}))


if __name__ == "__main__":
    main()
