"""Numba kernels that parse bag-of-words text straight into sparse-matrix arrays.

Each kernel reads whole lines of ASCII from a uint8 buffer into arrays its caller allocated, and
stops at the first line it cannot read, returning that line's offset: the caller then reports the
line by file and number (bagofwords.py says what is wrong with it). Numbers are plain decimals of at
most MAX_NUMBER; anything else (a sign, a letter, a byte that is not ASCII) stops the parse.
"""

import numba

MAX_NUMBER = 10**15          # below 2**53, so every count is exact as a float64
_NL, _CR, _SPACE, _TAB, _COLON, _DOT = 10, 13, 32, 9, 58, 46


@numba.njit(cache=True, inline="always")
def _is_blank(byte):
    return byte == _SPACE or byte == _TAB or byte == _CR


@numba.njit(cache=True, inline="always")
def _skip_blanks(buf, i):
    while i < buf.size and _is_blank(buf[i]):
        i += 1
    return i


@numba.njit(cache=True, inline="always")
def _is_digit(byte):
    return 48 <= byte <= 57


@numba.njit(cache=True)
def _read_natural(buf, i):
    """(value, offset after it) of the digits at buf[i:]; value -1 if there are none or too many."""
    start, value = i, 0
    while i < buf.size and _is_digit(buf[i]):
        value = value * 10 + (buf[i] - 48)
        if value > MAX_NUMBER:
            return -1, i
        i += 1
    return (value if i > start else -1), i


@numba.njit(cache=True)
def _read_whole_decimal(buf, i):
    """(value, offset after it) of a decimal such as 3, 3.0 or 3.000e+00 whose value is a whole
    number; value -1.0 if it is not one. Exact: the value is mantissa * 10**(trailing zeros +
    exponent - fraction digits), where the mantissa ends in a non-zero digit."""
    mantissa, zeros, fraction_digits, n_digits = 0, 0, 0, 0
    in_fraction = False
    while i < buf.size:
        byte = buf[i]
        if byte == _DOT and not in_fraction:
            in_fraction = True
        elif _is_digit(byte):
            n_digits += 1
            if in_fraction:
                fraction_digits += 1
            if byte == 48:
                if mantissa > 0:
                    zeros += 1
            else:
                for _ in range(zeros + 1):
                    mantissa *= 10
                    if mantissa > MAX_NUMBER:
                        return -1.0, i
                mantissa += byte - 48
                zeros = 0
        else:
            break
        i += 1
    if n_digits == 0:
        return -1.0, i
    exponent = 0
    if i < buf.size and (buf[i] == 101 or buf[i] == 69):        # e or E
        i += 1
        sign = 1
        if i < buf.size and (buf[i] == 43 or buf[i] == 45):     # + or -
            sign = 1 if buf[i] == 43 else -1
            i += 1
        exponent, i = _read_natural(buf, i)
        if exponent < 0:
            return -1.0, i
        exponent *= sign
    if mantissa == 0:
        return 0.0, i
    scale = zeros + exponent - fraction_digits
    if scale < 0:
        return -1.0, i
    value = mantissa
    for _ in range(scale):
        value *= 10
        if value > MAX_NUMBER:
            return -1.0, i
    return float(value), i


@numba.njit(cache=True)
def parse_ldac(buf, n_terms, indptr, indices, counts, row, nnz):
    """Parse LDA-C lines (`N id:count ...`, N pairs, ids below n_terms) into CSR arrays, starting
    at document `row` and entry `nnz`. A blank line is bad unless only blank lines follow it.

    Returns (row, nnz, bad): the documents and entries so far, and the offset of the first line
    that could not be read, or -1.
    """
    i, n = 0, buf.size
    while i < n:
        start = i
        i = _skip_blanks(buf, i)
        if i == n or buf[i] == _NL:
            while i < n and (buf[i] == _NL or _is_blank(buf[i])):
                i += 1
            return row, nnz, (-1 if i == n else start)
        declared, i = _read_natural(buf, i)
        if declared < 0:
            return row, nnz, start
        pairs = 0
        while True:
            field = _skip_blanks(buf, i)
            if field == n or buf[field] == _NL:
                i = field + 1
                break
            if field == i:                      # no blank before this field
                return row, nnz, start
            term, i = _read_natural(buf, field)
            if term < 0 or term >= n_terms or i == n or buf[i] != _COLON:
                return row, nnz, start
            count, i = _read_natural(buf, i + 1)
            if count < 0 or nnz == indices.size:
                return row, nnz, start
            indices[nnz] = term
            counts[nnz] = count
            nnz += 1
            pairs += 1
        if pairs != declared:
            return row, nnz, start
        row += 1
        indptr[row] = nnz
    return row, nnz, -1


@numba.njit(cache=True)
def parse_triples(buf, value_kind, n_rows, n_cols, rows, cols, counts, nnz):
    """Parse coordinate lines `row column [value]` (1-based, row <= n_rows, column <= n_cols) into
    0-based rows and columns and counts, from entry nnz on; blank lines are skipped.

    value_kind: 0 a natural number, 1 a decimal whose value is a whole number, 2 none (the count
    is 1). Returns (nnz, bad): the entries so far and the offset of the first line that could not
    be read (or that is one entry more than the arrays hold), or -1.
    """
    i, n = 0, buf.size
    while i < n:
        start = i
        i = _skip_blanks(buf, i)
        if i == n:
            break
        if buf[i] == _NL:
            i += 1
            continue
        r, i = _read_natural(buf, i)
        field = _skip_blanks(buf, i)
        if r < 1 or r > n_rows or field == i:
            return nnz, start
        c, i = _read_natural(buf, field)
        if c < 1 or c > n_cols:
            return nnz, start
        value = 1.0
        if value_kind != 2:
            field = _skip_blanks(buf, i)
            if field == i:
                return nnz, start
            if value_kind == 0:
                whole, i = _read_natural(buf, field)
                value = float(whole)
            else:
                value, i = _read_whole_decimal(buf, field)
            if value < 0:
                return nnz, start
        i = _skip_blanks(buf, i)
        if i < n and buf[i] != _NL:
            return nnz, start
        i += 1
        if nnz == rows.size:
            return nnz, start
        rows[nnz] = r - 1
        cols[nnz] = c - 1
        counts[nnz] = value
        nnz += 1
    return nnz, -1


@numba.njit(cache=True)
def remap_columns(indptr, indices, counts, column):
    """In place: replace each column index j by column[j], dropping the entries whose new column
    is negative, and update indptr to match. Returns the number of entries kept.

    Equivalent to, for a CSR matrix X: keep = column[X.indices] >= 0; X = CSR of
    (X.data[keep], column[X.indices][keep]) with each row's entries in their order.
    """
    nnz = 0
    start = indptr[0]
    for row in range(indptr.size - 1):
        stop = indptr[row + 1]
        for k in range(start, stop):
            j = column[indices[k]]
            if j >= 0:
                indices[nnz] = j
                counts[nnz] = counts[k]
                nnz += 1
        start = stop
        indptr[row + 1] = nnz
    return nnz
