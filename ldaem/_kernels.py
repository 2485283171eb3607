"""Compiled kernels of the variational E-step (DESIGN.md, "Variational E-step" and "The ELBO").

Only numba functions over contiguous arrays and scalars live here: no classes, logging or I/O.
Topic-word parameters are stored word-major (V x K). The E-step copies each document's rows of
them once into a block of chunks of its words, each chunk K x (up to 8 vectors of words),
topic-major, so that an inner iteration takes both of its products over a chunk while the chunk
is in the first-level cache and its s_w are in registers. The inner iterations and the copy are
written with explicit vectors (ldaem._simd), the rest left to LLVM's vectoriser. The weights may
be float32: the blocks, products, ratios and exp(E[log theta]) then are too (twice the values
per vector instruction and half the bytes), while gamma, the sufficient statistics and the
bounds stay float64.
Every kernel's docstring names its plain-numpy equivalent; tests/test_kernels.py checks it.
"""

import math

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic

from ldaem import _simd as simd
from ldaem.model import UNSEEN_WORD_PROBABILITY as SMOOTHED_WEIGHT_FLOOR

# Floating-point reassociation lets LLVM vectorise the dot products; no flag that assumes away NaN
# or infinity is set, so a NaN still propagates to the caller's checks. error_model="numpy" makes a
# division by zero give inf or NaN instead of raising, so a loop that divides has no branch and
# vectorises too.
FAST = {"reassoc", "contract", "nsz", "arcp"}
KERNEL = {"cache": True, "fastmath": FAST, "error_model": "numpy"}

# At most this many values (2 MiB of float64) in a document's block, or one chunk of words when
# K is above 8,192 (float64) or 4,096 (float32). A document with more words is taken in blocks
# of words that are copied again at every inner iteration.
BLOCK_VALUES = 1 << 18

# SMOOTHED_WEIGHT_FLOOR, the least E-step weight of smoothed topics, is maximum-likelihood topics'
# floor (model.UNSEEN_WORD_PROBABILITY): a word no training document used keeps lambda_kw = eta,
# and with eta below about 0.004, exp(E[log beta_kw]) < 1e-100 would underflow to 0 in every
# topic, making s_w = 0 and the document's bound NaN. The bound's log s_w of such a word is then
# the floor's, above its true value (psi(eta) - psi(sum_w lambda_kw) at most): a held-out bound
# with so small an eta overstates the tokens of words unseen in training.


@intrinsic
def _float_bits(typingctx, value):
    """The bits of a float64 as an int64 (a free reinterpretation, unlike a conversion)."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))
    return types.int64(types.float64), codegen


@intrinsic
def _bits_float(typingctx, bits):
    """The float64 whose bits are the int64 given."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())
    return types.float64(types.int64), codegen


_ROUND = 6755399441055744.0         # 1.5 * 2^52: x + _ROUND rounds x to an integer (|x| < 2^51)
_INV_LN2 = 1.4426950408889634
_LN2_HI = 0.6931471803691238        # ln 2 to 32 bits, so that n * _LN2_HI is exact for |n| < 2^21
_LN2_LO = 1.9082149292705877e-10    # ln 2 - _LN2_HI
_TAYLOR = tuple(1.0 / math.factorial(i) for i in range(14))   # 1/0!, 1/1!, ..., 1/13!


# Not "reassoc": that would fold (z + _ROUND) - _ROUND into z. LLVM inlines this into the loops
# that call it and keeps these flags on its instructions.
@njit(cache=True, fastmath={"contract"})
def fast_exp(x):
    """exp(x) within 2 ulp for x < 709.43, without a branch or a call, so that a loop of it
    vectorises (the llvmlite wheels have no vector math library). Gives 0 below -708.39, where
    exp(x) is subnormal, and NaN for NaN. (The E-step's arguments are below -log 6.)

    x = n ln 2 + r with n = round(x / ln 2), |r| <= ln(2) / 2; exp(r) by its Taylor series to r^13
    (the next term is below 2^-56 of it), times 2^n made from n's bits. The series beyond its
    first two terms is summed in Estrin's order (pairs of terms, then pairs of pairs with r^2, r^4
    and r^8) rather than Horner's, a chain of 6 dependent operations instead of 13, so that a
    loop of it is not bound by latency; 1 + r is added last, so that only the last addition
    rounds at the result's scale (within 1.1 ulp; summing all terms in Estrin's order, 2.2).
    """
    shifted = x * _INV_LN2 + _ROUND
    n_bits = _float_bits(shifted)           # the low bits hold n
    n = shifted - _ROUND
    r = x - n * _LN2_HI - n * _LN2_LO
    c = _TAYLOR
    r2 = r * r
    r4 = r2 * r2
    r8 = r4 * r4
    tail = ((c[2] + c[3] * r) + r2 * (c[4] + c[5] * r)
            + r4 * ((c[6] + c[7] * r) + r2 * (c[8] + c[9] * r))
            + r8 * ((c[10] + c[11] * r) + r2 * (c[12] + c[13] * r)))     # sum_{i>=2} r^(i-2) / i!
    p = 1.0 + (r + r2 * tail)
    scale = _bits_float((n_bits + 1023) << 52)   # 2^n: exponent field n + 1023, mantissa zero
    return 0.0 if x < -708.39 else p * scale


_SQRT2 = 1.4142135623730951
_SMALLEST_NORMAL = 2.2250738585072014e-308
_ATANH = tuple(2.0 / (2 * i + 1) for i in range(11, -1, -1))   # 2/23, ..., 2/3, 2/1
_HALF_LOG_2PI = 0.9189385332046728


@njit(cache=True, fastmath={"contract"})
def fast_log(x):
    """log(x) for x > 0 within a few ulp, without a call, so that a loop of it vectorises.

    x = 2^e m with m in [sqrt(1/2), sqrt(2)), taken from x's bits (a subnormal is scaled by 2^54
    first); log m = 2 atanh(s) with s = (m - 1) / (m + 1), |s| < 0.172, by its series to s^23
    (the next term is below 2^-57 of it).
    """
    subnormal = x < _SMALLEST_NORMAL
    x = x * 18014398509481984.0 if subnormal else x
    bits = _float_bits(x)
    e = ((bits >> 52) & 0x7FF) - 1023
    m = _bits_float((bits & 0xFFFFFFFFFFFFF) | 0x3FF0000000000000)     # x's mantissa, in [1, 2)
    big = m > _SQRT2
    m = 0.5 * m if big else m
    n = float(e + 1 if big else e) - (54.0 if subnormal else 0.0)
    s = (m - 1.0) / (m + 1.0)
    s2 = s * s
    p = _ATANH[0]
    for coefficient in _ATANH[1:]:
        p = p * s2 + coefficient
    return n * _LN2_HI + (s * p + n * _LN2_LO)


@njit(cache=True, inline="always")
def _digamma_shifted(x):
    """x shifted up by 6 below 6: the y of _digamma_parts(x)."""
    return x + 6.0 if x < 6.0 else x


@njit(cache=True, inline="always")
def _digamma_parts(x):
    """(y, c) with psi(x) = log(y) + c and y >= 6, for x > 0; without a branch (a select), so that
    a loop of it vectorises.

    Below 6, psi(x) = psi(x + 6) - sum_{i<6} 1/(x+i), the six terms summed as one fraction:
    pairing i with 5 - i gives (2x+5)(1/a + 1/b + 1/c). Above, the asymptotic series
    psi(y) ~ log y - 1/(2y) - sum_n B_2n / (2n y^2n), up to y^-14.
    """
    small = x < 6.0
    a = x * (x + 5.0)
    b = (x + 1.0) * (x + 4.0)
    d = (x + 2.0) * (x + 3.0)
    c = -(2.0 * x + 5.0) * (b * d + a * d + a * b) / (a * b * d) if small else 0.0
    y = _digamma_shifted(x)
    inv = 1.0 / y
    inv2 = inv * inv
    series = inv2 * (1.0 / 12 - inv2 * (1.0 / 120 - inv2 * (1.0 / 252 - inv2 * (
        1.0 / 240 - inv2 * (1.0 / 132 - inv2 * (691.0 / 32760 - inv2 / 12))))))
    return y, c - 0.5 * inv - series


@njit(cache=True, error_model="numpy")
def digamma(x):
    """psi(x) for x > 0. Equivalent to scipy.special.digamma(x) (within 1e-13 relative)."""
    y, c = _digamma_parts(x)
    return math.log(y) + c


@njit(cache=True, inline="always")
def _log_gamma_from_parts(x, y, log_y):
    """log Gamma(x) for x > 0, given y = x + 6 if x < 6 else x and log y (as _digamma_parts makes
    them): Stirling's series at y, up to y^-13, less log(x (x+1) ... (x+5)) when x was shifted."""
    inv = 1.0 / y
    inv2 = inv * inv
    series = inv * (1.0 / 12 - inv2 * (1.0 / 360 - inv2 * (1.0 / 1260 - inv2 * (
        1.0 / 1680 - inv2 * (1.0 / 1188 - inv2 * (691.0 / 360360 - inv2 / 156))))))
    stirling = (y - 0.5) * log_y - y + _HALF_LOG_2PI + series
    shift = x * (x + 1.0) * (x + 2.0) * (x + 3.0) * (x + 4.0) * (x + 5.0)
    return stirling - (fast_log(shift) if x < 6.0 else 0.0)


@njit(cache=True, parallel=True, fastmath=FAST, error_model="numpy")
def topic_expectations(lam, exp_elog_beta, n_chunks):
    """The E-step's weights of smoothed topics, and the sums the topic terms of the ELBO need.

    lam: V x K Dirichlet parameters (word-major), summed in n_chunks blocks of words (the
    threads' shares; the result does not depend on the number of threads). Fills exp_elog_beta (V x K) with
    exp(E[log beta_kw]) = exp(psi(lam_wk) - psi(sum_w lam_wk)) and returns (sum_wk E[log beta_kw],
    sum_wk lam_wk E[log beta_kw], sum_wk log Gamma(lam_wk) - sum_k log Gamma(sum_w lam_wk)), in two
    parallel passes (the column sums, then the rest); exp(E[log beta]) floored at
    SMOOTHED_WEIGHT_FLOOR. Equivalent to: elog = digamma(lam) - digamma(lam.sum(0)); exp(elog), elog.sum(),
    (lam * elog).sum(), gammaln(lam).sum() - gammaln(lam.sum(0)).sum().
    """
    n_words, n_topics = lam.shape
    bounds = np.linspace(0, n_words, n_chunks + 1).astype(np.int64)
    column_parts = np.zeros((n_chunks, n_topics))
    for c in prange(n_chunks):
        for w in range(bounds[c], bounds[c + 1]):
            for k in range(n_topics):
                column_parts[c, k] += lam[w, k]
    psi_total = np.empty(n_topics)
    log_gamma_totals = 0.0
    for k in range(n_topics):
        total = 0.0
        for c in range(n_chunks):      # a loop, not .sum(): parallel=True would make that a
            total += column_parts[c, k]   # reduction whose order depends on the thread count
        psi_total[k] = digamma(total)
        log_gamma_totals += math.lgamma(total)
    parts = np.zeros((n_chunks, 3))
    for c in prange(n_chunks):
        sum_elog = sum_lam_elog = sum_log_gamma = 0.0
        for w in range(bounds[c], bounds[c + 1]):
            for k in range(n_topics):
                x = lam[w, k]
                y, shift = _digamma_parts(x)
                log_y = fast_log(y)
                elog = log_y + shift - psi_total[k]
                exp_elog_beta[w, k] = max(y * fast_exp(shift - psi_total[k]), SMOOTHED_WEIGHT_FLOOR)
                sum_elog += elog
                sum_lam_elog += x * elog
                sum_log_gamma += _log_gamma_from_parts(x, y, log_y)
        parts[c, 0] = sum_elog
        parts[c, 1] = sum_lam_elog
        parts[c, 2] = sum_log_gamma
    sums = np.zeros(3)
    for c in range(n_chunks):
        for i in range(3):
            sums[i] += parts[c, i]
    return sums[0], sums[1], sums[2] - log_gamma_totals


@njit(**KERNEL)
def exp_dirichlet_expectation(gamma_d, out, work):
    """out[k] = exp(E[log theta_k] - m) under Dirichlet(gamma_d > 0), with m = max_k E[log theta_k]
    (that of the largest gamma_dk, digamma being increasing), so that the largest is 1; returns m.
    work: K float64 values of scratch, so that the exponents are not rounded to a float32 out.
    Unscaled, every value can lie below float32's range (a short document with a small alpha:
    exp(psi(0.01) - psi(2)) = 1e-44). The E-step's gamma and sufficient statistics do not depend
    on the scale of t; its word bound takes m back (_fit_document).

    Equivalent to elog = psi(gamma_d) - psi(gamma_d.sum()); m = elog.max(); np.exp(elog - m), m;
    computed as y exp(c - psi(sum) - m) with psi = log y + c, which saves a logarithm per topic,
    and with fast_exp, so that the loops over topics vectorise. Every loop is one short chain per
    topic: the digamma's and the exponential's in one loop were too long a chain for the core to
    overlap enough topics (21% slower at K=100, with the same exp), and the largest gamma is taken
    on its bits (of a positive double, ordered as the values are) so that the search vectorises
    too. A NaN in gamma_d makes m NaN, and so the E-step's bound.
    """
    total = 0.0
    for k in range(gamma_d.shape[0]):
        total += gamma_d[k]
    largest_bits = _float_bits(gamma_d[0])
    for k in range(gamma_d.shape[0]):
        largest_bits = max(largest_bits, _float_bits(gamma_d[k]))
    psi_total = digamma(total)
    shift = digamma(_bits_float(largest_bits)) - psi_total
    for k in range(gamma_d.shape[0]):
        _, c = _digamma_parts(gamma_d[k])
        work[k] = c - psi_total - shift
    for k in range(gamma_d.shape[0]):     # y recomputed rather than stored: one add and a select
        out[k] = _digamma_shifted(gamma_d[k]) * fast_exp(work[k])
    return shift


@njit(cache=True, parallel=True, fastmath=FAST, error_model="numpy")
def dirichlet_expectation_sum(gamma):
    """Column sums of E[log theta] over documents (the alpha M-step's sufficient statistic); the
    digammas as psi = log y + c (_digamma_parts), in loops that vectorise.

    Equivalent to (psi(gamma) - psi(gamma.sum(1))[:, None]).sum(0).
    """
    n_docs, n_topics = gamma.shape
    per_doc = np.empty((n_docs, n_topics))
    for d in prange(n_docs):
        total = 0.0
        for k in range(n_topics):
            total += gamma[d, k]
        psi_total = digamma(total)
        for k in range(n_topics):
            y, shift = _digamma_parts(gamma[d, k])
            per_doc[d, k] = fast_log(y) + shift - psi_total
    sums = np.zeros(n_topics)
    for d in range(n_docs):     # in document order, whatever the number of threads
        for k in range(n_topics):
            sums[k] += per_doc[d, k]
    return sums


@njit(cache=True, parallel=True)
def log_dirichlet_normaliser(params):
    """Row-wise log Gamma(sum_k p_k) - sum_k log Gamma(p_k) of a 2-D array of Dirichlet parameters.

    Equivalent to gammaln(params.sum(1)) - gammaln(params).sum(1).
    """
    out = np.empty(params.shape[0])
    for r in prange(params.shape[0]):
        total = 0.0
        log_gamma_sum = 0.0
        for k in range(params.shape[1]):
            total += params[r, k]
            log_gamma_sum += math.lgamma(params[r, k])
        out[r] = math.lgamma(total) - log_gamma_sum
    return out


@njit(cache=True, inline="always")
def _padded(n_words, lanes):
    """n_words rounded up to whole vectors: a block's columns are padded so that no loop over
    them has a scalar remainder."""
    return (n_words + lanes - 1) // lanes * lanes


# A block holds its words in chunks of this many vectors (32 words of float64, 64 of float32),
# then at most one chunk each of 4, 2 and 1 vectors for the words left: K x 256 bytes at most,
# which stay in the core's first-level cache from the first product of an inner iteration to the
# second (at K up to ~120), and whose s_w fit in registers. Not a free parameter: _chunk_pass
# names its 8 accumulators.
CHUNK_VECTORS = 8


@njit(cache=True, inline="always")
def _chunk_of(j, n_padded, lanes):
    """(first word, width in words) of the chunk of word j < n_padded in a block of n_padded
    words, a whole number of vectors (_padded)."""
    wide = CHUNK_VECTORS * lanes
    first = j // wide * wide
    if first + wide <= n_padded:
        return first, wide
    width = wide // 2
    while first + width > n_padded or j >= first + width:
        if first + width <= n_padded:
            first += width
        width //= 2
    return first, width


@njit(**KERNEL)
def _gather(indices, counts, exp_elog_beta, first, last, block, block_counts):
    """Fills block (flat) with exp_elog_beta's rows of the words of nonzeros first..last-1, in
    chunks (CHUNK_VECTORS), each chunk K x its width, topic-major; block_counts[j] = counts[first
    + j]. The words are padded to a whole vector, the padding with topic weights 1 and count 0,
    hence ratio 0. A transposition, made a vector-wide square tile at a time, with the rows of the
    next words asked for ahead (they are scattered over the V x K array, mostly outside the core's
    caches)."""
    n_topics = exp_elog_beta.shape[1]
    n_words = last - first
    lanes = simd.width(block)
    n_padded = _padded(n_words, lanes)
    j = 0
    while j + lanes <= n_words:
        chunk, width = _chunk_of(j, n_padded, lanes)
        start = chunk * n_topics + j - chunk      # value (0, j) of the chunk, K x width from chunk * K
        ahead = j + 2 * lanes <= n_words
        k = 0
        while k + lanes <= n_topics:
            if ahead and k % (2 * lanes) == 0:      # once per 64-byte line (a tile row: 32)
                for i in range(lanes):
                    simd.prefetch(exp_elog_beta, np.int64(indices[first + j + lanes + i]) * n_topics + k)
            simd.transpose_tile(exp_elog_beta, indices, first + j, k, block, start + k * width, width)
            k += lanes
        for k in range(k, n_topics):
            for i in range(lanes):
                block[start + k * width + i] = exp_elog_beta[indices[first + j + i], k]
        j += lanes
    for j in range(j, n_padded):
        chunk, width = _chunk_of(j, n_padded, lanes)
        start = chunk * n_topics + j - chunk
        for k in range(n_topics):
            block[start + k * width] = exp_elog_beta[indices[first + j], k] if j < n_words else 1.0
    for j in range(n_padded):
        block_counts[j] = counts[first + j] if j < n_words else 0.0


@njit(cache=True, inline="always", fastmath=FAST, error_model="numpy")
def _ratios(block_counts, at, s, ratio):
    """ratio[at:at + width] = block_counts[at:at + width] / s, returned too."""
    r = simd.load(block_counts, at) / s
    simd.store(ratio, at, r)
    return r


@njit(cache=True, inline="always", fastmath=FAST, error_model="numpy")
def _chunk_pass(first, n_vectors, block_counts, block, t, ratio, partial):
    """The two products of an inner iteration over the chunk of n_vectors (1, 2, 4 or
    CHUNK_VECTORS; a constant where it is called) vectors of words from word first: ratio_j =
    n_j / s_j with s_j = sum_k t_k B_kj, and partial[k] += (a vector) the terms of sum_j ratio_j
    B_kj. The s_j and ratios stay in registers and the chunk's values are read from memory once
    for both products."""
    n_topics = t.shape[0]
    lanes = simd.width(block)
    width = n_vectors * lanes
    start = first * n_topics
    zero = simd.splat(block, 0)
    s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = zero
    for k in range(n_topics):
        tk = simd.splat(block, t[k])
        p = start + k * width
        s0 = simd.multiply_add(tk, simd.load(block, p), s0)
        if n_vectors >= 2:
            s1 = simd.multiply_add(tk, simd.load(block, p + lanes), s1)
        if n_vectors >= 4:
            s2 = simd.multiply_add(tk, simd.load(block, p + 2 * lanes), s2)
            s3 = simd.multiply_add(tk, simd.load(block, p + 3 * lanes), s3)
        if n_vectors >= 8:
            s4 = simd.multiply_add(tk, simd.load(block, p + 4 * lanes), s4)
            s5 = simd.multiply_add(tk, simd.load(block, p + 5 * lanes), s5)
            s6 = simd.multiply_add(tk, simd.load(block, p + 6 * lanes), s6)
            s7 = simd.multiply_add(tk, simd.load(block, p + 7 * lanes), s7)
    r0 = _ratios(block_counts, first, s0, ratio)
    r1 = _ratios(block_counts, first + lanes, s1, ratio) if n_vectors >= 2 else zero
    r2 = _ratios(block_counts, first + 2 * lanes, s2, ratio) if n_vectors >= 4 else zero
    r3 = _ratios(block_counts, first + 3 * lanes, s3, ratio) if n_vectors >= 4 else zero
    r4 = _ratios(block_counts, first + 4 * lanes, s4, ratio) if n_vectors >= 8 else zero
    r5 = _ratios(block_counts, first + 5 * lanes, s5, ratio) if n_vectors >= 8 else zero
    r6 = _ratios(block_counts, first + 6 * lanes, s6, ratio) if n_vectors >= 8 else zero
    r7 = _ratios(block_counts, first + 7 * lanes, s7, ratio) if n_vectors >= 8 else zero
    for k in range(n_topics):
        p = start + k * width
        a = simd.multiply_add(r0, simd.load(block, p), simd.load(partial, k * lanes))
        if n_vectors >= 2:
            a = simd.multiply_add(r1, simd.load(block, p + lanes), a)
        if n_vectors >= 4:
            a = simd.multiply_add(r2, simd.load(block, p + 2 * lanes), a)
            a = simd.multiply_add(r3, simd.load(block, p + 3 * lanes), a)
        if n_vectors >= 8:
            a = simd.multiply_add(r4, simd.load(block, p + 4 * lanes), a)
            a = simd.multiply_add(r5, simd.load(block, p + 5 * lanes), a)
            a = simd.multiply_add(r6, simd.load(block, p + 6 * lanes), a)
            a = simd.multiply_add(r7, simd.load(block, p + 7 * lanes), a)
        simd.store(partial, k * lanes, a)


@njit(**KERNEL)
def _block_pass(n_padded, block_counts, block, t, ratio, partial, backward):
    """The two products of an inner iteration (DESIGN.md, E-step) over a block of n_padded words
    (_gather): s = t @ B, ratio = n / s, and partial[k] += (a vector) the terms of (B @ ratio)_k,
    a chunk at a time: the chunks of CHUNK_VECTORS vectors, then one each of 4, 2 and 1 as the
    words left allow; when backward, those last ones first, then the others from the last to
    the first. At K=100 a block of AP's mean document (106 KiB) is larger than the first-level
    cache, which holds about the chunks taken last: alternate iterations going back and forth
    start on them (3% less time at K=100 on AP).

    Equivalent to s = t @ B; ratio = n / s; acc += B @ ratio, with B the K x n_padded matrix the
    block holds (chunk by chunk) and acc the lane sums of partial.
    """
    lanes = simd.width(block)
    wide = CHUNK_VECTORS * lanes
    n_full = n_padded // wide
    # the tail chunks' calls and the full chunks' loop each written once, taken in one order or
    # the other: numba inlines _chunk_pass at each call, and eight copies took 17 s more to compile
    for tails in (backward, not backward):
        if tails:
            first = n_full * wide
            if first + 4 * lanes <= n_padded:
                _chunk_pass(first, 4, block_counts, block, t, ratio, partial)
                first += 4 * lanes
            if first + 2 * lanes <= n_padded:
                _chunk_pass(first, 2, block_counts, block, t, ratio, partial)
                first += 2 * lanes
            if first < n_padded:
                _chunk_pass(first, 1, block_counts, block, t, ratio, partial)
        else:
            for i in range(n_full):
                _chunk_pass((n_full - 1 - i if backward else i) * wide, CHUNK_VECTORS, block_counts,
                            block, t, ratio, partial)


@njit(**KERNEL)
def _document_pass(start, end, indices, counts, exp_elog_beta, t, block, block_counts,
                   block_ratio, partial, gathered, doc_ratio, acc, backward):
    """acc = sum_i ratio_i beta_{w_i} with ratio_i = n_i / s_i and s_i = sum_k t_k beta_{w_i k},
    over the nonzeros start..end-1 of one document. When the whole document is in the block
    (gathered), its ratios stay in block_ratio; otherwise the words are gathered a block of
    block_counts.shape[0] at a time, and their ratios written to doc_ratio (the document's, from
    its first nonzero). Either way the chunks of a block are taken backward if asked (_block_pass).

    Equivalent to ratio = counts / (B @ t); acc = ratio @ B, with B = exp_elog_beta[indices[start:end]].
    """
    lanes = simd.width(block)
    zero = simd.splat(block, 0)
    for k in range(t.shape[0]):
        simd.store(partial, k * lanes, zero)
    if gathered:
        _block_pass(_padded(end - start, lanes), block_counts, block, t, block_ratio, partial, backward)
    else:
        for first in range(start, end, block_counts.shape[0]):
            last = min(first + block_counts.shape[0], end)
            _gather(indices, counts, exp_elog_beta, first, last, block, block_counts)
            _block_pass(_padded(last - first, lanes), block_counts, block, t, block_ratio, partial, backward)
            for i in range(last - first):
                doc_ratio[first - start + i] = block_ratio[i]
    for k in range(t.shape[0]):
        acc[k] = simd.total(simd.load(partial, k * lanes))


@njit(**KERNEL)
def _theta_weights(gamma_d, point_theta, t, work):
    """t_k of the E-step: exp(E[log theta_dk] - m) under Dirichlet(gamma_d), or gamma_d itself
    when theta_d is a point estimate (MAP: theta_d = gamma_d / sum gamma_d); the ratios t_k / s_w
    do not depend on the scale of t. Returns log(t_k / exp(E[log theta_dk])): -m, or 0 for MAP.
    work: K float64 of scratch (exp_dirichlet_expectation)."""
    if point_theta:
        t[:] = gamma_d
        return 0.0
    return -exp_dirichlet_expectation(gamma_d, t, work)


@njit(**KERNEL)
def _fit_document(start, end, indices, counts, exp_elog_beta, alpha, gamma_d, exp_elog_theta_d,
                  doc_ratio, max_iter, tol, point_theta):
    """Coordinate ascent on one document's (gamma_d, phi_d), or with point_theta EM for its MAP
    theta_d (docs/map.md); gamma_d is updated in place.

    Leaves in exp_elog_theta_d the t (_theta_weights) of the returned gamma_d, and in doc_ratio
    (end - start values) the n_dw / s_w of the phi optimal for it. Once the change of gamma falls
    below tol, the gamma before that last small step is kept: its optimal phi is already at hand,
    and every step raised the objective. Returns (sum_w n_dw log s_w, iterations), s_w of the
    unscaled t: the log of t's scale is taken back out.
    """
    n_topics = exp_elog_beta.shape[1]
    lanes = simd.width(exp_elog_beta)
    chunk = CHUNK_VECTORS * lanes
    width = min(_padded(end - start, lanes), max(chunk, BLOCK_VALUES // n_topics // chunk * chunk))
    dtype = exp_elog_beta.dtype
    block = np.empty(n_topics * width, dtype=dtype)
    block_counts, block_ratio = np.empty(width, dtype=dtype), np.empty(width, dtype=dtype)
    acc, partial, previous = np.empty(n_topics, dtype=dtype), np.empty(n_topics * lanes, dtype=dtype), np.empty(n_topics)
    work = np.empty(n_topics)
    gathered = end - start <= width
    if gathered:
        _gather(indices, counts, exp_elog_beta, start, end, block, block_counts)
    n_iter = 0
    last_pass = max_iter <= 0   # a pass for the phi of gamma_d alone, once max_iter are spent
    while True:                 # one call of _document_pass, so one inlined copy of its loops
        log_scale = _theta_weights(gamma_d, point_theta, exp_elog_theta_d, work)
        _document_pass(start, end, indices, counts, exp_elog_beta, exp_elog_theta_d, block,
                       block_counts, block_ratio, partial, gathered, doc_ratio, acc, n_iter % 2 == 1)
        if last_pass:
            break
        n_iter += 1
        # gamma_dk = alpha_k + t_k sum_w n_dw beta_kw / s_w  (DESIGN.md, E-step; docs/map.md)
        change = 0.0
        for k in range(n_topics):
            new = alpha[k] + exp_elog_theta_d[k] * acc[k]
            change += abs(new - gamma_d[k])
            previous[k] = gamma_d[k]
            gamma_d[k] = new
        if change / n_topics < tol:
            for k in range(n_topics):
                gamma_d[k] = previous[k]
            break
        last_pass = n_iter == max_iter
    if gathered:
        for i in range(end - start):
            doc_ratio[i] = block_ratio[i]
    word_bound = 0.0
    for i in range(start, end):
        word_bound += counts[i] * (math.log(counts[i] / doc_ratio[i - start]) - log_scale)
    return word_bound, n_iter


@njit(**KERNEL)
def _theta_bound(gamma_d, gamma_sum, alpha):
    """The terms of L_d (DESIGN.md, "The ELBO") in gamma_d but for the prior's normaliser:
    sum_k (alpha_k - gamma_dk) E[log theta_dk] + log Gamma(gamma_dk) - log Gamma(sum_k gamma_dk),
    with E[log theta_dk] recomputed in float64 whatever the E-step's precision. digamma and
    log Gamma share their shift and logarithm, and the loop vectorises.

    Equivalent to ((alpha - g) * (digamma(g) - digamma(g.sum())) + gammaln(g)).sum() - gammaln(g.sum()).
    """
    psi_sum = digamma(gamma_sum)
    bound = -math.lgamma(gamma_sum)
    for k in range(gamma_d.shape[0]):
        g = gamma_d[k]
        y, shift = _digamma_parts(g)
        log_y = fast_log(y)
        bound += (alpha[k] - g) * (log_y + shift - psi_sum) + _log_gamma_from_parts(g, y, log_y)
    return bound


@njit(cache=True)
def _point_theta_bound(gamma_d, gamma_sum, alpha, n_tokens):
    """The terms of a document's MAP objective (docs/map.md) beside sum_w n_dw log s_w, with
    s_w = sum_k gamma_dk beta_kw: log p(w_d | theta_d) + sum_k alpha_k log theta_dk at theta_d =
    gamma_d / sum_k gamma_dk is that sum plus -N_d log sum_k gamma_dk + sum_k alpha_k log theta_dk."""
    log_sum = math.log(gamma_sum)
    bound = -n_tokens * log_sum
    for k in range(gamma_d.shape[0]):
        bound += alpha[k] * (math.log(gamma_d[k]) - log_sum)
    return bound


@njit(cache=True, parallel=True, fastmath=FAST, error_model="numpy")
def cvb0_sweep(indptr, indices, counts, phi, word_topic, topic_total, alpha, eta, beta, gamma,
               doc_bound):
    """One CVB0 sweep over a CSR batch (docs/cvb0.md), documents in parallel.

    phi: nnz x K, each nonzero's distribution over topics (one of its tokens'), updated in place;
    word_topic: V x K and topic_total: K, the expected counts N_wk and N_k of the sweep's start,
    held fixed during it; each document's N_dk is updated as its nonzeros are. For one token of
    nonzero (d, w), with its own share o = min(n_dw, 1) phi_dw left out of every count (a count
    below one is all of a token's share, so that no count goes negative):
        phi_dwk proportional to (N_wk - o_k + eta) (N_dk - o_k + alpha_k) / (N_k - o_k + V eta).
    Fills gamma (D x K) with alpha + N_dk after the sweep and doc_bound (D) with the document's
    MAP objective (docs/map.md) at theta_d = gamma_d / sum_k gamma_dk and the topics beta (V x K).

    Equivalent to tests/reference.cvb0_sweep.
    """
    n_docs = indptr.shape[0] - 1
    n_words_eta = word_topic.shape[0] * eta
    n_topics = phi.shape[1]
    for d in prange(n_docs):
        start, end = indptr[d], indptr[d + 1]
        doc_topic = np.zeros(n_topics)
        weights = np.empty(n_topics)
        for i in range(start, end):
            for k in range(n_topics):
                doc_topic[k] += counts[i] * phi[i, k]
        for i in range(start, end):
            w = indices[i]
            share = min(counts[i], 1.0)
            total = 0.0
            for k in range(n_topics):
                own = share * phi[i, k]
                weight = ((word_topic[w, k] - own + eta) * (doc_topic[k] - own + alpha[k])
                          / (topic_total[k] - own + n_words_eta))
                weights[k] = weight
                total += weight
            for k in range(n_topics):
                new = weights[k] / total
                doc_topic[k] += counts[i] * (new - phi[i, k])
                phi[i, k] = new
        gamma_sum = 0.0
        for k in range(n_topics):
            gamma[d, k] = alpha[k] + doc_topic[k]
            gamma_sum += gamma[d, k]
        word_bound = 0.0
        n_tokens = 0.0
        for i in range(start, end):
            s = 0.0
            for k in range(n_topics):
                s += gamma[d, k] * beta[indices[i], k]
            word_bound += counts[i] * math.log(s)
            n_tokens += counts[i]
        doc_bound[d] = word_bound + _point_theta_bound(gamma[d], gamma_sum, alpha, n_tokens)


@njit(cache=True, parallel=True)
def cvb0_start(indices, topics, phi):
    """phi_i proportional to the topics' weights of nonzero i's word (theta uniform), written into
    phi (nnz x K, float64 or float32) without a float64 copy of that size.

    Equivalent to phi[:] = topics[indices] / topics[indices].sum(axis=1, keepdims=True).
    """
    n_topics = topics.shape[1]
    for i in prange(indices.shape[0]):
        w = indices[i]
        total = 0.0
        for k in range(n_topics):
            total += topics[w, k]
        for k in range(n_topics):
            phi[i, k] = topics[w, k] / total


@njit(cache=True)
def _word_blocks(word_ptr, n_words):
    """Bounds of _WORD_BLOCKS blocks of words with equal shares of the entries (word_ptr: a
    chunk's word_index row), which threads take in equal numbers: a vocabulary sorted by frequency
    puts most entries in its first words."""
    word_bounds = np.empty(_WORD_BLOCKS + 1, dtype=np.int64)
    w = 0
    for b in range(_WORD_BLOCKS):
        share = word_ptr[n_words] * b / _WORD_BLOCKS
        while word_ptr[w] < share:
            w += 1
        word_bounds[b] = w
    word_bounds[_WORD_BLOCKS] = n_words
    return word_bounds


@njit(cache=True, parallel=True)
def word_topic_counts(word_ptr, entry, counts, phi, out):
    """out_wk = sum_i counts_i phi_ik over the nonzeros i of word w (entries by word from
    word_index, of a batch taken as one chunk), summed in document order; each thread owns whole
    words, as in _add_topic_word_sstats.

    Equivalent to out[:] = 0; np.add.at(out, indices, counts[:, None] * phi).
    """
    n_words, n_topics = out.shape
    word_bounds = _word_blocks(word_ptr, n_words)
    for b in prange(_WORD_BLOCKS):
        for w in range(word_bounds[b], word_bounds[b + 1]):
            for k in range(n_topics):
                out[w, k] = 0.0
            for p in range(word_ptr[w], word_ptr[w + 1]):
                i = entry[p]
                for k in range(n_topics):
                    out[w, k] += counts[i] * phi[i, k]


@njit(cache=True)
def word_index(indptr, indices, chunk_docs, word_ptr, entry, entry_doc):
    """Fills the entries by word of each chunk of the CSR batch's documents. Chunk c holds
    documents chunk_docs[c] to chunk_docs[c + 1] - 1, whose nonzeros start at first =
    indptr[chunk_docs[c]]; its word w's entries are entry[first + word_ptr[c, w]:first +
    word_ptr[c, w + 1]] (positions in indices), in document order, and entry_doc their documents.
    word_ptr: n_chunks x (V + 1) zeros; entry, entry_doc: nnz each. A pass over the nonzeros in
    one thread: batch EM makes it once per corpus.

    Equivalent to the CSC form of each chunk's rows, with its entries' CSR positions as data.
    """
    n_words = word_ptr.shape[1] - 1
    fill = np.empty(n_words, dtype=np.int64)
    for c in range(chunk_docs.shape[0] - 1):
        first, last = indptr[chunk_docs[c]], indptr[chunk_docs[c + 1]]
        ptr = word_ptr[c]
        for i in range(first, last):
            ptr[indices[i] + 1] += 1
        for w in range(n_words):
            ptr[w + 1] += ptr[w]
            fill[w] = first + ptr[w]
        for d in range(chunk_docs[c], chunk_docs[c + 1]):
            for i in range(indptr[d], indptr[d + 1]):
                w = indices[i]
                entry[fill[w]] = i
                entry_doc[fill[w]] = d
                fill[w] += 1


_WORD_BLOCKS = 256


@njit(cache=True, parallel=True)
def _add_topic_word_sstats(word_ptr, entry, entry_doc, first, ratio, exp_elog_theta, sstats):
    """sstats_wk += sum_d n_dw t_dk / s_dw over one chunk of documents, from its word_index (its
    row word_ptr, entries from first, ratio[i - first] of its nonzero i); the E-step multiplies by
    beta_wk once all chunks are in (DESIGN.md, E-step).

    Equivalent to sstats += R.T @ exp_elog_theta with R the CSR matrix of the chunk's ratios.
    Each thread owns whole words, so the sum has a fixed order: no per-thread copies of the
    V x K array, and the result does not depend on the number of threads.
    """
    n_words, n_topics = sstats.shape
    word_bounds = _word_blocks(word_ptr, n_words)
    for b in prange(_WORD_BLOCKS):
        for w in range(word_bounds[b], word_bounds[b + 1]):
            for p in range(first + word_ptr[w], first + word_ptr[w + 1]):
                r = ratio[entry[p] - first]
                d = entry_doc[p]
                for k in range(n_topics):
                    sstats[w, k] += r * exp_elog_theta[d, k]


@njit(cache=True, parallel=True)
def e_step(indptr, indices, counts, exp_elog_beta, alpha, gamma, max_iter, tol, want_sstats,
           chunk_docs, word_ptr, entry, entry_doc, point_theta):
    """The variational E-step over a CSR batch of documents (DESIGN.md), or with point_theta the
    E-step of EM for MAP topic proportions (docs/map.md).

    indptr, indices, counts: the batch's rows (int32 or int64, the same, and float64); exp_elog_beta: V x K, beta
    itself for maximum-likelihood topics or exp(E[log beta]) for smoothed ones, float64 or float32
    (the precision of the inner iterations); alpha: K;
    gamma: D x K starting point (a warm start or alpha + N_d / K), updated in place; chunk_docs:
    the bounds of the chunks of documents taken in turn (the ratios n_dw / s_dw of one chunk at a
    time are kept, not the whole batch's); word_ptr, entry, entry_doc: the batch's word_index by
    those chunks (empty arrays unless want_sstats).

    Returns (sstats, doc_bound, n_iter): sstats V x K (zeros(0, 0) unless
    want_sstats); doc_bound[d] = L_d, the document's ELBO at the phi optimal for gamma_d (with
    point_theta: log p(w_d | theta_d, beta) + sum_k alpha_k log theta_dk, docs/map.md);
    n_iter[d] = inner iterations used.
    """
    n_docs = indptr.shape[0] - 1
    n_words, n_topics = exp_elog_beta.shape
    exp_elog_theta = np.empty((n_docs, n_topics), dtype=exp_elog_beta.dtype)
    doc_bound = np.empty(n_docs)
    n_iter = np.empty(n_docs, dtype=np.int64)
    sstats = np.zeros((n_words, n_topics) if want_sstats else (0, 0))
    chunk_nonzeros = 0
    for c in range(chunk_docs.shape[0] - 1):
        chunk_nonzeros = max(chunk_nonzeros, indptr[chunk_docs[c + 1]] - indptr[chunk_docs[c]])
    ratio = np.empty(chunk_nonzeros, dtype=exp_elog_beta.dtype)
    alpha_sum = 0.0
    alpha_log_gamma = 0.0
    for k in range(n_topics):
        alpha_sum += alpha[k]
        alpha_log_gamma += math.lgamma(alpha[k])
    prior_norm = math.lgamma(alpha_sum) - alpha_log_gamma
    for c in range(chunk_docs.shape[0] - 1):
        first = indptr[chunk_docs[c]]
        for d in prange(chunk_docs[c], chunk_docs[c + 1]):
            start, end = indptr[d], indptr[d + 1]
            word_bound, n_iter[d] = _fit_document(
                start, end, indices, counts, exp_elog_beta, alpha, gamma[d], exp_elog_theta[d],
                ratio[start - first:end - first], max_iter, tol, point_theta)
            gamma_sum = 0.0
            for k in range(n_topics):
                gamma_sum += gamma[d, k]
            if point_theta:
                # s_w was computed with t = gamma_d: p(w | theta_d) = s_w / sum_k gamma_dk
                n_tokens = 0.0
                for i in range(start, end):
                    n_tokens += counts[i]
                bound = word_bound + _point_theta_bound(gamma[d], gamma_sum, alpha, n_tokens)
            else:
                bound = prior_norm + word_bound + _theta_bound(gamma[d], gamma_sum, alpha)
            doc_bound[d] = bound
        if want_sstats:
            _add_topic_word_sstats(word_ptr[c], entry, entry_doc, first, ratio, exp_elog_theta, sstats)
    if want_sstats:
        for w in prange(n_words):
            for k in range(n_topics):
                sstats[w, k] *= exp_elog_beta[w, k]
    return sstats, doc_bound, n_iter
