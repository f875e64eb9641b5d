"""One renderer for the C-like GPU languages: CUDA C (codegen/cuda.py, cuda_matmul.py), MSL
(codegen/msl.py) and WGSL (codegen/wgsl.py) are small files of data over this package.

    language.py      CStyleLanguage: types, op spellings, casts, literals, reductions, and
                     the words the skeletons differ by
    emitter.py       CEmitter: the statements of a kernel body (addressing, loads, stores,
                     expressions), on schedule/analysis.py's view of the group
    reductions.py    the reductions' statements (a mixin of CEmitter)
    accumulators.py  how each reduction accumulates (plain, argmax/argmin, exact products)
    compare.py       comparisons made by value where the language lacks numpy's dtype
    skeletons.py     the elementwise, reduce and SIMT matmul fillers every language shares
    launch.py        Launch: how a rendered kernel is launched
"""
