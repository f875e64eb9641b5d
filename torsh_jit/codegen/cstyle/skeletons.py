"""The skeleton fillers every C-style language shares: elementwise, reduce and SIMT matmul.

Each one plans the kernel (vector width, rows, passes, registers kept, tiles), asks the
emitter for the statements, and renders the language's skeleton templates/<name>/<kind><suffix>.j2
with them; what differs between CUDA C, MSL and WGSL is the language object's data.
Every filler returns (source, Launch).
"""
from __future__ import annotations

import math

from ...fuse import Group
from ...ir.dtypes import family
from ...ir.symbols import divides, is_symbolic, statically_one, statically_zero
from ...schedule.gpu import tiled_loads
from ...schedule.layout import plan_axes
from ..jinja_env import template
from .emitter import CEmitter, Ctx, indent
from .language import CStyleLanguage
from .launch import Launch
from .sizes import size_lets

SIMT_THREADS = 256             # the SIMT matmul skeletons lay out 16 x 16 threads


def skeleton(lang: CStyleLanguage, kind: str):
    return template(f"{lang.name}/{kind}{lang.file_suffix}.j2")


def scalar_buffers(specs) -> frozenset:
    """The argument positions passed by value (scalars), not as buffers."""
    return frozenset(i for i, s in enumerate(specs) if s.kind == "scalar")


def params_of(em: CEmitter) -> tuple:
    """((buffer, "ptr" | "scalar", dtype), ...) in the kernel's signature order."""
    return tuple((b, "scalar" if b in em.scalar_bufs else "ptr", em.buffer_dtype(b))
                 for b in em.buffers())


def at_least_one(n):
    """max(1, n) for a count of blocks; a symbolic count as it is (it may be 0 at a call:
    the launcher skips or caps a grid of none)."""
    return n if is_symbolic(n) else max(1, n)


def batch_offset(acc, batch, nb, var: str, wide: str | None = "long long") -> str:
    """Element offset of operand `acc` for the linear batch index `var` (each term widened to
    `wide` first; None: no cast, where the index type is the offset type)."""
    terms = [str(acc.offset)] if not statically_zero(acc.offset) else []
    cur = var
    for d in range(nb - 1, -1, -1):
        coord = cur if d == 0 else f"({cur} % {batch[d]})"
        if not statically_zero(acc.strides[d]):
            terms.append((f"({wide})" if wide else "") + f"{coord} * {acc.strides[d]}")
        cur = f"({cur} / {batch[d]})"
    return " + ".join(terms) or "0"


# -- elementwise -------------------------------------------------------------------------------
def elementwise_shape(group: Group, cfg):
    """(axes, V, groups of V per row, groups) of an elementwise kernel: rows of a length V
    does not divide take one element a group (a row's groups must stay aligned)."""
    ax = plan_axes(group)
    V = cfg.vec
    if ax.outer and not divides(V, ax.K):
        V = 1
    per_row = -(-ax.K // V)
    return ax, V, per_row, ax.rows * per_row


def elementwise_grid(group: Group, cfg) -> tuple:
    G = elementwise_shape(group, cfg)[3]
    return ("stride", at_least_one(-(-G // (cfg.threads * max(1, cfg.unroll)))))


def render_elementwise(group: Group, cfg, name: str, scalars, lang: CStyleLanguage,
                       aligned: bool = False) -> tuple[str, Launch]:
    """aligned: the kernel has only the wide accesses and says which pointers they need
    aligned (Launch.align); else it checks them at run time and has scalar accesses besides.
    The scalar half was a tenth of NVRTC's time for a chain of three inputs."""
    ax, V, per_row, G = elementwise_shape(group, cfg)
    K = ax.K
    em = CEmitter(lang, group, V=V, index=lang.index_type(group), scalar_bufs=scalars, ax=ax)
    U = max(1, cfg.unroll)
    loads = em.varying_loads()
    tail = not ax.outer and not statically_zero(K % V)   # a single row's last group is partial
    vec = lang.vec_flag
    units = []
    for u in range(U):          # U groups per thread per step, T apart: U loads in flight
        tag, k = f"_{u}", f"k_{u}"
        ctx = Ctx(lambda li, tag=tag: f"lr{li}{tag}" if em.modes_of_load(li) == "invariant"
                  else f"l{li}{tag}[v]")
        names = {si: f"s{si}" + ("" if lang.units_scoped else tag) for si in range(len(group.stores))}
        guard = f"{k} + {V} <= {K}" if tail else None
        units.append(dict(
            u=u, o=f"o_{u}", k=k, tag=tag,
            setup=em.row_setup(f"o_{u}", tag),
            loads="\n".join(em.load_group(li, k, f"l{li}{tag}", guard=guard, vec=vec, tag=tag)
                            for li in loads),
            decl="\n".join(lang.array.format(T=lang.mem_types[group.stores[si].access.dtype], n=n, V=V)
                           for si, n in names.items()),
            compute=em.compute_stores(ctx, names),
            stores="\n".join(em.store_group(si, k, n, guard=guard, vec=vec, tag=tag)
                             for si, n in names.items()),
        ))
    align = tuple(sorted({(buf, al) for _, buf, al in em.vector_accesses()})) if aligned else ()
    src = skeleton(lang, "elementwise").render(
        name=name, T=cfg.threads, V=V, U=U, G=G, K=K, per_row=per_row, rows=ax.rows, I=em.I,
        many_rows=is_symbolic(ax.rows) or ax.rows > 1,
        params=", ".join(em.params()), vec_ok="true" if align else em.vec_ok_expr(), units=units,
        scalars=lang.scalar_lets(em), sizes=size_lets(em.I), indent=indent)
    return src, Launch(name, "elementwise", cfg.threads, params_of(em), elementwise_grid(group, cfg),
                       align=align, lang=lang)


def render_elementwise_tiles(group: Group, cfg, name: str, scalars, lang: CStyleLanguage
                             ) -> tuple[str, Launch]:
    """x + y.T and friends: 32 x 32 tiles, the loads along rows through shared memory
    (templates/cuda/elementwise_tiles.cu.j2)."""
    ax = plan_axes(group)
    em = CEmitter(lang, group, V=1, index=lang.index_type(group), scalar_bufs=scalars, ax=ax)
    tiled = tiled_loads(group, ax)
    tiles = []
    for li in tiled:
        acc = group.loads[li]
        conv = lang.load_conv.get(acc.dtype, "{x}")
        read = conv.format(x=lang.elem.format(buf=acc.buf, ro=f"ro_t{li}",
                                              i=em.inner_offset(("l", li), "kk")))
        tiles.append((lang.types[acc.dtype], li, em.row_offset(("l", li), "rr"), read))

    def load(li):
        if li in tiled:
            return f"tl_{li}[tx][ty + 8 * i]"
        return f"lr{li}" if em.modes_of_load(li) == "invariant" else f"l{li}[v]"
    names = {si: f"s{si}" for si in range(len(group.stores))}
    src = skeleton(lang, "elementwise_tiles").render(
        name=name, K=ax.K, rows=ax.rows, I=em.I, params=", ".join(em.params()), tiled=tiles,
        setup=em.row_setup("o", skip={("l", li) for li in tiled}),
        loads="\n".join(em.load_group(li, "k", f"l{li}", guard=None, vec="false")
                        for li in em.varying_loads() if li not in tiled),
        decl="\n".join(lang.array.format(T=lang.mem_types[group.stores[si].access.dtype], n=n, V=1)
                       for si, n in names.items()),
        compute=em.compute_stores(Ctx(load), names),
        stores="\n".join(em.store_group(si, "k", n, guard=None, vec="false") for si, n in names.items()),
        sizes=size_lets(em.I), indent=indent)
    grid = ("rows", at_least_one(-(-ax.rows // 32) * -(-ax.K // 32)))
    return src, Launch(name, "tiles", 256, params_of(em), grid, lang=lang)


# -- reductions --------------------------------------------------------------------------------
def reduce_shape(group: Group, cfg):
    """(axes, V, threads per row) of a row reduction: rows of a length V does not divide
    take one element a group."""
    ax = plan_axes(group)
    V = cfg.vec if divides(cfg.vec, ax.K) else 1
    return ax, V, (cfg.threads if cfg.split and not cfg.columns else cfg.tpr or 1)


def reduce_grid(group: Group, cfg) -> tuple:
    ax, V, tpr = reduce_shape(group, cfg)
    if cfg.split and cfg.columns:         # blocks of rpb rows, each thread 32 elements a part
        rpb = cfg.threads // tpr
        return ("split", -(-ax.rows // rpb), at_least_one(-(-ax.K // (tpr * 32))))
    if cfg.split:
        return ("split", ax.rows, at_least_one(-(-ax.K // (cfg.threads * V * 4))))
    return ("rows", at_least_one(-(-ax.rows // (cfg.threads // tpr))))


def render_reduce(group: Group, cfg, name: str, scalars, lang: CStyleLanguage,
                  warp: int = 32) -> tuple[str, Launch]:
    """warp: the target's warp (SIMD-group) width, a power of two."""
    ax, V, tpr = reduce_shape(group, cfg)
    K, rows = ax.K, ax.rows
    T = cfg.threads
    split = cfg.split
    # a thread sums at most 64 elements of a row: in float32, then float64 across threads
    # (a row of symbolic length may be long: the wide sums, unless cached below)
    short = not split and not is_symbolic(K) and -(-K // (tpr * V)) * V <= 64
    em = CEmitter(lang, group, V=V, index=lang.index_type(group), scalar_bufs=scalars, ax=ax,
                  short_sums=short)
    rpb = T // tpr
    users = em.load_users()
    step = tpr * V
    # registers hold J groups of a row: all of it for every length (a symbolic one: every
    # length up to J groups a thread, which the config's guard asks; not where a language
    # keeps whole rows only)
    J = cfg.cache if not split and not (is_symbolic(K) and lang.cache_whole_rows) else 0
    if J and lang.cache_whole_rows and not (tpr > 1 and J * step >= K):
        J = 0
    if J and is_symbolic(K) and not K <= J * step:
        J = 0     # (asked, as the config did: a longer row re-reads memory in another variant)
    cached = sorted(li for li, u in users.items() if J and len(u) >= 2)
    J = J if cached else 0
    exact = bool(J) and not is_symbolic(K) and J * step == K
    if J and is_symbolic(K) and J * V <= 64:
        em.short_sums = True    # (the guard K <= J * step bounds what a thread adds)
    W = max(1, T // warp)
    vec = lang.vec_flag

    kept = em.kept_values(cached, J, V)         # expr -> the pass that computes it

    def ctx_for(level=None):
        def load(li):
            if em.modes_of_load(li) == "invariant":
                return f"lr{li}"
            return f"c{li}[j][v]" if li in cached else f"l{li}[v]"
        seed = {e: f"k{e}[j][v]" for e, p in kept.items() if level is None or p < level}
        return Ctx(load, seed)

    def loop_loads(lis, k):
        return "\n".join(em.load_group(li, k, f"l{li}", guard=None, vec=vec)
                         for li in lis if li not in cached)

    nslot = max([len(em.acc_vars(p)) for p in em.passes] or [1])
    passes = []
    for p in em.passes:
        roots = [group.exprs[i].args[0] for i in em.reductions_of(p)]
        lis = em.varying_loads(roots)
        passes.append(dict(
            level=p,
            hoist=em.hoist(p),
            init=em.acc_init(p, V),
            loads=loop_loads(lis, "k"),
            accumulate=em.accumulate(p, ctx_for(p), "v", "k + v",
                                     keep={e: f"k{e}[j][v]" for e, q in kept.items() if q == p}),
            fold=em.acc_fold(p, V),
            accs=lang.pass_accs(em, p, name),
            shfl=em.combine_from(p, lambda n, t: lang.shuffle(n, "o", t)),
        ))
        passes[-1].update(lang.pass_exchange(em, p, name, rows, nslot))
        passes[-1]["finish"] = em.finish_pass(p)    # later passes read its results (r<i>)
    final_hoist = em.hoist(len(em.passes) and max(em.passes) + 1)
    row_stores = em.row_stores()
    vst = em.varying_stores()
    decl, names = em.store_arrays()
    final_lis = em.varying_loads([group.stores[si].expr for si in vst]) if vst else []
    # columns: a store contiguous along the row (softmax(x.T) into a C-order result) goes
    # through a tile in shared memory, so that lanes write along the row, not 32 rows apart
    # (stores 4 KiB apart made a 4096^2 softmax over x.T 4x slower than its loads on the H200)
    tiled = [si for si in names if cfg.columns and em.modes[("s", si)][0] == "contig"] \
        if V == 1 else []
    final = dict(
        decl=decl,
        loads=loop_loads(final_lis, "k"),
        compute=em.compute_stores(ctx_for(), names),
        stores="\n".join(em.store_group(si, "k", n, guard=None, vec=vec)
                         for si, n in names.items() if si not in tiled),
        tiles=[(lang.mem_types[group.stores[si].access.dtype], si, names[si]) for si in tiled],
        tile_rows="\n".join(lang.let.format(T=em.I, n=f"ro_s{si}T", x=em.row_offset(("s", si), "rowT"))
                            for si in tiled),
        tile_stores="\n".join(f"{lang.elem.format(buf=group.stores[si].access.buf, ro=f'ro_s{si}T', i='kT')}"
                              f" = tl_{si}[tk][tr];" for si in tiled),
    ) if vst else None
    cache_fill = "\n".join(
        em.load_group(li, "k", f"c{li}[j]", guard=None, vec=vec, decl=False) for li in cached)
    cache_decl = "\n".join(
        [lang.array2.format(T=lang.types[group.loads[li].dtype], n=f"c{li}", J=J, V=V) for li in cached] +
        [lang.array2.format(T=lang.types[group.exprs[e].dtype], n=f"k{e}", J=J, V=V) for e in kept])
    columns = cfg.columns
    units = -(-rows // rpb) if columns and split else rows   # what a split's blocks share
    for ps in passes if split or columns else ():     # (the CUDA skeleton's)
        pi, accs = em.passes.index(ps["level"]), [n for _, n in em.acc_vars(ps["level"])]
        if columns:
            # a row's threads are rpb apart: the w-th partial of row rl; a split's partials
            # per row of the block (rl), after each (unit, part)'s nslot slots
            ps["from_smem"] = em.combine_from(ps["level"], lambda n, t: f"sh_{n}[w * {rpb} + rl]")
            at = lambda slot, part, pi=pi: \
                f"((({pi}LL * {units} + blk) * S + {part}) * {nslot} + {slot}) * {rpb} + rl"
            ps["from_ws"] = em.combine_from(ps["level"], lambda n, t, at=at, accs=accs:
                                            f"*(volatile {t}*)(ws + {at(accs.index(n), 's')})")
        else:
            at = lambda slot, part, pi=pi: f"(({pi}LL * {units} + row) * S + {part}) * {nslot} + {slot}"
        ps["ws_at"] = [at(i, "part") for i in range(len(accs))]
    smem_accs = [a for p in em.passes for a in em.acc_vars(p)] \
        if tpr > warp or (columns and tpr > 1) else []
    barrier = split and (len(em.passes) > 1 or bool(vst))
    src = skeleton(lang, "reduce").render(
        name=name, T=T, V=V, K=K, ROWS=rows, tpr=tpr, rpb=rpb, W=W, J=J, exact=exact, step=step,
        I=em.I, params=", ".join(em.params() + (["unsigned long long* __restrict__ ws_raw"] if split else [])),
        vec_ok=em.vec_ok_expr(), setup=em.row_setup("row", skip={("s", si) for si in tiled}), passes=passes, final_hoist=final_hoist,
        row_stores=row_stores, final=final, cache_fill=cache_fill, cache_decl=cache_decl,
        smem_accs=smem_accs, split=split, barrier=barrier, nslot=nslot, cached=bool(cached),
        columns=columns, UNITS=units, unit="blk" if columns else "row",
        warp=warp, warp_shift=warp.bit_length() - 1,
        subgroups=bool(cfg.subgroups) and tpr > 1, scalars=lang.scalar_lets(em),
        sizes=size_lets(em.I), indent=indent)
    ws = (nslot * (rpb if columns else 1)) if split else 0     # slots per (unit, part)
    return src, Launch(name, "reduce", T, params_of(em), reduce_grid(group, cfg), workspace=ws,
                       passes=len(em.passes) if split else 0, barrier=barrier, lang=lang)


# -- matmul ------------------------------------------------------------------------------------
def epilogue(em: CEmitter, acc_expr: str, V: int, hoist: tuple = (), chunks: int = 0,
             stored_by_tma: bool = False) -> dict:
    """Code of the fused epilogue for V accumulators acc_expr(v) at row `row`, inner `k`.
    hoist: loads that do not depend on the row within a tile (a bias along N), read before the
    epilogue's chunks into pl<li>[chunk][v] (`pre`: for row `prow`, inner `k`, chunk `ch`).
    stored_by_tma: the template writes the stores' values (s<si>) itself: no store offsets."""
    L = em.L
    mdt = em.g.exprs[0].dtype
    seed = {0: L.cast(acc_expr, "float32" if family(mdt) == "f" and mdt not in ("float64",)
                      else mdt, mdt)}
    lis = [li for li in em.varying_loads() if li not in hoist]

    def load(li):
        if em.modes_of_load(li) == "invariant":
            return f"lr{li}"
        return f"pl{li}[ch][v]" if li in hoist else f"l{li}[v]"
    ctx = Ctx(load, seed)
    names = {si: f"s{si}" for si in range(len(em.g.stores))}
    decl = "\n".join(L.array.format(T=L.mem_types[em.g.stores[si].access.dtype], n=n, V=V)
                     for si, n in names.items())
    # hoisted loads have the pre-loads' row offsets (ro_l<li>p), not the row's
    skip = {("l", li) for li in hoist} | \
        ({("s", si) for si in names} if stored_by_tma else set())
    setup = em.row_setup("row", skip=skip)
    pre_decl = "\n".join(L.array2.format(T=L.types[em.g.loads[li].dtype], n=f"pl{li}", J=chunks, V=V)
                         for li in hoist)
    pre = "\n".join([L.let.format(T=em.I, n=f"ro_l{li}p", x=em.row_offset(("l", li), "prow"))
                     for li in hoist] +
                    [em.load_group(li, "k", f"pl{li}[ch]", guard=None, vec=L.vec_flag, decl=False,
                                   tag="p") for li in hoist])
    return dict(
        setup=setup,
        loads="\n".join(em.load_group(li, "k", f"l{li}", guard=None, vec=L.vec_flag) for li in lis),
        decl=decl,
        compute=em.compute_stores(ctx, names),
        stores="\n".join(em.store_group(si, "k", n, guard=None, vec=L.vec_flag) for si, n in names.items()),
        pre_decl=pre_decl, pre=pre,
    )


def render_matmul_simt(group: Group, cfg, name: str, scalars, lang: CStyleLanguage
                       ) -> tuple[str, Launch]:
    from ...schedule.gpu_rules import mm_common
    nb, batch, M, N, K, A, B = mm_common(group)
    em = CEmitter(lang, group, V=1, index=lang.index_type(group), scalar_bufs=scalars)
    mdt = group.exprs[0].dtype
    acc_dt = "float32" if mdt in ("float16", "bfloat16") else mdt
    fam = family(acc_dt)
    BM, BN, BK = cfg.tile_m or 64, cfg.tile_n or 64, cfg.tile_k or 16
    T = SIMT_THREADS
    TM, TN = BM // 16, BN // 16
    ident = lang.literal(False if fam == "b" else 0, acc_dt)
    conv = lambda acc: lang.cast(lang.load_conv.get(acc.dtype, "{x}").format(x="{x}"), acc.dtype, acc_dt)

    def read(acc, idx):
        x = lang.load_conv.get(acc.dtype, "{x}").format(x=lang.elem.format(buf=acc.buf, ro="0", i=idx))
        return lang.cast(x, acc.dtype, acc_dt)
    muladd = lang.fmt(lang.muladd[fam], acc_dt, a="a[i]", b="bb[j]", c="acc[i][j]")
    epi = epilogue(em, "acc[i][j]", 1)
    wide = lang.types.get("int64")      # batch offsets in 64 bits where the language has them
    P = max(1, cfg.parts) if fam == "f" else 1
    params = em.params() + (["unsigned long long* __restrict__ ws_raw"] if P > 1 else [])
    src = skeleton(lang, "matmul_simt").render(
        name=name, T=T, BM=BM, BN=BN, BK=BK, TM=TM, TN=TN, M=M, N=N, K=K, NZ=at_least_one(math.prod(batch)),
        AT=lang.types[acc_dt], ident=ident, params=", ".join(params), P=P,
        a_off=batch_offset(A, batch, nb, "bz", wide), b_off=batch_offset(B, batch, nb, "bz", wide),
        a_m=A.strides[nb], a_k=A.strides[nb + 2], b_n=B.strides[nb + 1], b_k=B.strides[nb + 2],
        a_kfast=not statically_one(A.strides[nb]) or statically_one(A.strides[nb + 2]),
        b_kfast=statically_one(B.strides[nb + 2]) and not statically_one(B.strides[nb + 1]),
        A=A, B=B, a_conv=conv(A), b_conv=conv(B), muladd=muladd, epi=epi, I=em.I, sizes=size_lets(em.I),
        a_read=read(A, f"a_base + m * {A.strides[nb]} + k * {A.strides[nb + 2]}"),
        b_read=read(B, f"b_base + n * {B.strides[nb + 1]} + k * {B.strides[nb + 2]}"),
        scalars=lang.scalar_lets(em), indent=indent)
    return src, Launch(name, "matmul", T, params_of(em), tiles_grid(group, BM, BN, P),
                       workspace=BM * BN if P > 1 else 0, passes=P if P > 1 else 0, lang=lang)


def tiles_grid(group: Group, BM: int, BN: int, parts: int = 1) -> tuple:
    """A block per BM x BN output tile (x along N, y along M, z the batch times the parts
    of a split K)."""
    from ...schedule.gpu_rules import mm_common
    nb, batch, M, N, K, A, B = mm_common(group)
    return ("tiles", -(-N // BN), -(-M // BM), at_least_one(math.prod(batch)) * parts)


def simt_tiles(cfg) -> tuple[int, int]:
    """(BM, BN) of the SIMT matmul skeletons for a config."""
    return cfg.tile_m or 64, cfg.tile_n or 64


def launch_grids(group: Group, cfg) -> tuple:
    """The grid of the kernel these skeletons write for a group, as its Launch has it (ints
    and Syms): what Backend.launch_sizes gives for a symbolic plan."""
    if group.kind == "matmul":
        return (tiles_grid(group, *simt_tiles(cfg)),)
    return ((elementwise_grid if group.kind == "elementwise" else reduce_grid)(group, cfg),)
