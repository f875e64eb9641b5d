"""LLVM IR for the CPU targets (x86-64, AArch64, RISC-V, wasm32): one renderer shared by
every triple, the differences being data in the target files.

    types.py     LLVM spellings of dtypes: scalar, memory and vector types, literals
    ops.py       the op table's LLVM spelling: one snippet per (op, dtype family)
    vmath.py     the vector math library (exp, log, sin, ...) the snippets call
    emitter.py   KernelEmitter: one kernel's loop bodies, for the templates
    memory.py    its loads, stores and row offsets
    reduce.py    its reduction code paths (accumulators, folds, argmax/argmin)
    columns.py   its column-reduction mode
    matmul.py    the register-blocked matmul kernel and its epilogue
    module.py    render_module: every kernel of a function in one module, entry points
    lowering.py  rewrites for what a target's instruction set lacks (soft fma)
"""
from .module import render_module

__all__ = ["render_module"]
