"""The explicit vectors of ldaem._simd, against numpy, in both precisions."""

import numpy as np
import pytest
from numba import njit

from ldaem import _simd as simd

DTYPES = [np.float64, np.float32]


@njit(cache=False)
def _fused_and_totals(a, b, c, out):
    """out[i:i+w] = a[i:i+w] * b[i:i+w] + c[i:i+w], then out[i:i+w] / splat(2); returns the
    totals of the vectors of out, vector by vector."""
    lanes = simd.width(a)
    totals = np.empty(a.shape[0] // lanes)
    for i in range(0, a.shape[0], lanes):
        v = simd.multiply_add(simd.load(a, i), simd.load(b, i), simd.load(c, i))
        simd.store(out, i, v / simd.splat(out, 2))
        totals[i // lanes] = simd.total(simd.load(out, i))
    return totals


@pytest.mark.parametrize("dtype", DTYPES)
def test_lanewise_arithmetic_and_totals_match_numpy(dtype):
    lanes = 32 // np.dtype(dtype).itemsize
    a, b, c = np.random.default_rng(0).random((3, 5 * lanes)).astype(dtype)
    out = np.empty_like(a)
    totals = _fused_and_totals(a, b, c, out)
    expected = (a.astype(float) * b + c) / 2
    np.testing.assert_allclose(out, expected, rtol=np.finfo(dtype).eps * 4)
    np.testing.assert_allclose(totals, expected.reshape(5, lanes).sum(axis=1), rtol=np.finfo(dtype).eps * 8)


@njit(cache=False)
def _tile(source, words, position, column, target, index, stride):
    simd.transpose_tile(source, words, position, column, target, index, stride)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("index_type", [np.int32, np.int64])
def test_transpose_tile_writes_the_listed_rows_transposed_and_nothing_else(dtype, index_type):
    lanes = 32 // np.dtype(dtype).itemsize
    rng = np.random.default_rng(1)
    source = rng.random((50, 3 * lanes + 1)).astype(dtype)
    words = rng.permutation(50)[:lanes + 3].astype(index_type)
    target = np.full((lanes + 2, 2 * lanes + 5), -1.0, dtype=dtype)
    _tile(source, words, 2, lanes + 1, target, target.shape[1] + 3, target.shape[1])
    expected = np.full_like(target, -1.0)
    expected[1:1 + lanes, 3:3 + lanes] = source[words[2:2 + lanes], lanes + 1:2 * lanes + 1].T
    np.testing.assert_array_equal(target, expected)


@njit(cache=False)
def _prefetch_then_sum(a):
    for i in range(0, a.shape[0] + 64, 8):       # past the end too: a prefetch never faults
        simd.prefetch(a, i)
    return a.sum()


def test_prefetch_compiles_and_never_faults_past_the_end():
    a = np.arange(100.0)
    assert _prefetch_then_sum(a) == a.sum()
