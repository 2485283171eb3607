"""Explicit short vectors for the numba kernels: 32 bytes of float64 (4 lanes) or float32 (8).

LLVM vectorises simple loops by itself, but a loop that stores to one array while it loads another
gets a run-time check that they do not overlap, a scalar copy of itself and a remainder loop, at
every entry; over a document's ~130 words, four topics at a time, that costs a share of the
arithmetic. A loop written with these vectors is vector code already. A transposition (gathering
a document's rows of the word-major topics into a topic-major block) is not vectorised by LLVM at
all; here it is a tile of width x width values at a time, moved with shuffles.

The vectors are LLVM's generic ones, which build on any target (on one without 32-byte registers
LLVM splits them). A multiply and an add carry the "contract" flag, so they become one fused
multiply-add where the CPU has one. Every function takes C-contiguous arrays and flat positions,
which the caller keeps in bounds: nothing here checks them.

numba's cache keys a kernel on its own file only: after editing this one, clear the cache
(`make clean`, or delete ldaem/__pycache__/*.nbi and *.nbc) or the old vector code stays loaded.
"""

import operator

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, models, overload, register_model

VECTOR_BYTES = 32


class Lanes(types.Type):
    """A vector of VECTOR_BYTES of one float type."""

    def __init__(self, dtype):
        self.dtype = dtype
        self.count = VECTOR_BYTES * 8 // dtype.bitwidth
        super().__init__(name=f"Lanes({dtype} x {self.count})")


@register_model(Lanes)
class _LanesModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        element = dmm.lookup(fe_type.dtype).get_value_type()
        super().__init__(dmm, fe_type, ir.VectorType(element, fe_type.count))


def _lanes_of(array_type):
    if (not isinstance(array_type, types.Array) or array_type.layout != "C"
            or array_type.dtype not in (types.float64, types.float32)):
        return None
    return Lanes(array_type.dtype)


def _address(context, builder, array_type, array, index, lanes):
    """Pointer to lanes.count elements of a contiguous array from flat position index."""
    data = context.make_array(array_type)(context, builder, array).data
    element = builder.gep(data, [index])
    return builder.bitcast(element, context.get_value_type(lanes).as_pointer())


@intrinsic
def width(typingctx, array):
    """The number of lanes of a vector of array's dtype (a compile-time constant)."""
    lanes = _lanes_of(array)
    if lanes is None:
        return None

    def codegen(context, builder, signature, args):
        return context.get_constant(types.intp, lanes.count)
    return types.intp(array), codegen


@intrinsic
def load(typingctx, array, index):
    """The width values of a C-contiguous array from flat position index (all within it)."""
    lanes = _lanes_of(array)
    if lanes is None or not isinstance(index, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        index = context.cast(builder, args[1], signature.args[1], types.intp)
        pointer = _address(context, builder, signature.args[0], args[0], index, lanes)
        return builder.load(pointer, align=lanes.dtype.bitwidth // 8)
    return lanes(array, index), codegen


@intrinsic
def store(typingctx, array, index, vector):
    """array[index:index + width] = vector."""
    lanes = _lanes_of(array)
    if lanes is None or vector != lanes or not isinstance(index, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        index = context.cast(builder, args[1], signature.args[1], types.intp)
        pointer = _address(context, builder, signature.args[0], args[0], index, lanes)
        builder.store(args[2], pointer, align=lanes.dtype.bitwidth // 8)
        return context.get_dummy_value()
    return types.none(array, index, vector), codegen


@intrinsic
def splat(typingctx, array, value):
    """A vector of array's dtype with every lane value (converted to that dtype)."""
    lanes = _lanes_of(array)
    if lanes is None or not isinstance(value, (types.Float, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        scalar = context.cast(builder, args[1], signature.args[1], lanes.dtype)
        vector_type = context.get_value_type(lanes)
        vector = builder.insert_element(ir.Constant(vector_type, ir.Undefined), scalar,
                                        ir.Constant(ir.IntType(32), 0))
        mask = ir.Constant(ir.VectorType(ir.IntType(32), lanes.count), [0] * lanes.count)
        return builder.shuffle_vector(vector, vector, mask)
    return lanes(array, value), codegen


@intrinsic
def multiply_add(typingctx, a, b, c):
    """a * b + c, lane by lane (one fused multiply-add where the CPU has it)."""
    if not (isinstance(a, Lanes) and a == b == c):
        return None

    def codegen(context, builder, signature, args):
        product = builder.fmul(args[0], args[1], flags=("contract",))
        return builder.fadd(product, args[2], flags=("contract",))
    return a(a, b, c), codegen


@intrinsic
def _divide(typingctx, a, b):
    if not (isinstance(a, Lanes) and a == b):
        return None

    def codegen(context, builder, signature, args):
        return builder.fdiv(args[0], args[1])
    return a(a, b), codegen


@overload(operator.truediv)
def _overload_truediv(a, b):
    """a / b, lane by lane."""
    if isinstance(a, Lanes) and a == b:
        return lambda a, b: _divide(a, b)


@intrinsic
def total(typingctx, vector):
    """The sum of the lanes (pairwise)."""
    if not isinstance(vector, Lanes):
        return None

    def codegen(context, builder, signature, args):
        value, count = args[0], vector.count
        while count > 1:
            count //= 2
            low = ir.Constant(ir.VectorType(ir.IntType(32), count), list(range(count)))
            high = ir.Constant(ir.VectorType(ir.IntType(32), count), list(range(count, 2 * count)))
            value = builder.fadd(builder.shuffle_vector(value, value, low),
                                 builder.shuffle_vector(value, value, high))
        return builder.extract_element(value, ir.Constant(ir.IntType(32), 0))
    return vector.dtype(vector), codegen


def _transpose(builder, rows):
    """The columns of the square matrix whose rows are the given vectors: at each scale b = 1, 2,
    4, ..., swap the off-diagonal b x b blocks, one shuffle per row."""
    rows, count = list(rows), len(rows)
    b = 1
    while b < count:
        for i in range(count):
            if i & b:
                continue
            j = i + b
            low = [c if not c & b else count + c - b for c in range(count)]
            high = [c + b if not c & b else count + c for c in range(count)]
            masks = [ir.Constant(ir.VectorType(ir.IntType(32), count), m) for m in (low, high)]
            rows[i], rows[j] = (builder.shuffle_vector(rows[i], rows[j], masks[0]),
                                builder.shuffle_vector(rows[i], rows[j], masks[1]))
        b *= 2
    return rows


@intrinsic
def transpose_tile(typingctx, source, words, position, column, target, target_index, target_stride):
    """target[target_index + q * target_stride + i] = source[words[position + i], column + q] for
    i, q < width: a width x width tile of the rows of the 2-D source that words lists, transposed
    into the C-contiguous target (flat positions)."""
    lanes = _lanes_of(source)
    if (lanes is None or source.ndim != 2 or _lanes_of(target) != lanes
            or not isinstance(words, types.Array) or words.layout != "C"
            or not isinstance(words.dtype, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        source_type, words_type, position_type, column_type, target_type, index_type, stride_type = signature.args
        intp = lambda value, typ: context.cast(builder, value, typ, types.intp)
        source_array = context.make_array(source_type)(context, builder, args[0])
        n_columns = cgutils.unpack_tuple(builder, source_array.shape)[1]
        word_data = context.make_array(words_type)(context, builder, args[1]).data
        position, column = intp(args[2], position_type), intp(args[3], column_type)
        alignment = lanes.dtype.bitwidth // 8
        rows = []
        for i in range(lanes.count):
            word = builder.load(builder.gep(word_data, [builder.add(position, ir.Constant(position.type, i))]))
            word = context.cast(builder, word, words_type.dtype, types.intp)
            flat = builder.add(builder.mul(word, n_columns), column)
            rows.append(builder.load(_address(context, builder, source_type, args[0], flat, lanes),
                                     align=alignment))
        index, stride = intp(args[5], index_type), intp(args[6], stride_type)
        for q, vector in enumerate(_transpose(builder, rows)):
            flat = builder.add(index, builder.mul(stride, ir.Constant(stride.type, q)))
            builder.store(vector, _address(context, builder, target_type, args[4], flat, lanes),
                          align=alignment)
        return context.get_dummy_value()
    return types.none(source, words, position, column, target, target_index, target_stride), codegen


@intrinsic
def prefetch(typingctx, array, index):
    """Ask the CPU to bring the cache line of the C-contiguous array's flat position index closer
    (no effect on results; never faults)."""
    if not isinstance(array, types.Array) or not isinstance(index, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        data = context.make_array(signature.args[0])(context, builder, args[0]).data
        index = context.cast(builder, args[1], signature.args[1], types.intp)
        pointer = builder.bitcast(builder.gep(data, [index]), ir.IntType(8).as_pointer())
        i32 = ir.IntType(32)
        function = builder.module.declare_intrinsic(
            "llvm.prefetch", [pointer.type], ir.FunctionType(ir.VoidType(), [pointer.type, i32, i32, i32]))
        # a read, into every cache level, of data
        builder.call(function, [pointer, ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()
    return types.none(array, index), codegen

