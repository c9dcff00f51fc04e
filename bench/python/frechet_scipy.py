#!/usr/bin/env python3
"""The Python side of bench/frechet.cpp: pytorch-fid's Fréchet distance (numpy.cov, scipy.linalg.sqrtm, its
1e-6 retry and imaginary-part check) on two feature files, timed from the feature matrices to the number.

    frechet_scipy.py A.npy B.npy ROUNDS   ->  one JSON line {"seconds": [...], "value": FD}
"""
import json
import sys
import time

import numpy as np
from scipy import linalg


def pytorch_fid_distance(x, y):
    mu1, mu2 = x.mean(axis=0), y.mean(axis=0)
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    covmean, _ = linalg.sqrtm(s1.dot(s2), disp=False)
    if not np.isfinite(covmean).all():
        offset = np.eye(s1.shape[0]) * 1e-6
        covmean = linalg.sqrtm((s1 + offset).dot(s2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError("imaginary component %g" % np.max(np.abs(covmean.imag)))
        covmean = covmean.real
    diff = mu1 - mu2
    return float(diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def main():
    x = np.load(sys.argv[1]).astype(np.float64)
    y = np.load(sys.argv[2]).astype(np.float64)
    seconds, value = [], None
    for _ in range(int(sys.argv[3])):
        start = time.perf_counter()
        value = pytorch_fid_distance(x, y)
        seconds.append(time.perf_counter() - start)
    print(json.dumps({"seconds": seconds, "value": value}))


if __name__ == "__main__":
    main()
