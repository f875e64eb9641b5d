"""Launch on the GPU: a plan's cubin loaded on the current device (CudaFunction), each
kernel's block size and grid chosen from its registers and shared memory (occupancy), and
the call path: numpy in -> copied to the device and back; cupy in -> cupy out; torch tensors
(or anything with __cuda_array_interface__ or DLPack) in -> read and written where they are,
no copies, outputs of the same kind. Kernels fed by Hopper's TMA take tensor maps by value
and launch through the driver (tma.py)."""
from __future__ import annotations

import copy
import math
import threading

import numpy as np

from ... import errors as E
from ...codegen.cstyle.launch import at_sizes
from ...ir.symbols import evaluate_shape
from ...ir.tracer import contiguous_strides
from .. import take_buffers
from . import tma
from .cubin import module_cubin
from .device import array_ptr, device_view, np_dtype_name, scalar_value, storage, to_host
from .hardware import device_arch, require_cupy, runs_on
from .occupancy import KernelInfo, blocks_per_sm, device_info

MAX_GRID_X = 2**31 - 1     # gridDim.x limit (compute capability 3.0 and later)

# CUfunction_attribute values (cuda.h): fixed by the driver API
_ATTR_MAX_THREADS, _ATTR_SHARED, _ATTR_LOCAL, _ATTR_REGS, _ATTR_MAX_DYN_SHARED = 0, 1, 3, 4, 8


class CudaFunction:
    """A built function on one device: its kernels, their launch data, and the call path."""

    device = True

    def __init__(self, plan, cubin: bytes, launches, cp):
        self.plan = plan
        self.cp = cp
        self.dev = device_info(cp.cuda.Device().id)
        target = plan.target
        self.warp = target.limit("warp_size", 32)
        self.smem_default = target.limit("shared_memory_per_block", 48 * 1024)   # without opt-in
        self.module, self.kernels = self._load(cubin, launches)
        self._unaligned = None            # (module, kernels) built on first need
        self._unaligned_lock = threading.Lock()
        self.launches = tuple(launches)
        self.by_name = {l.name: l for l in self.launches}
        self.sizes = None                 # a bound symbolic plan's size table on the device
        take_buffers(self, plan)
        self._streams: dict = {}
        if any(l.tmaps for l in launches):
            self._maps = tma.MapCache()

    def _load(self, cubin, launches):
        """(module, {kernel name: (function, KernelInfo)}) of a cubin."""
        cp = self.cp
        module = cp.cuda.function.Module()
        module.load(cubin)
        kernels: dict[str, tuple] = {}
        drv = cp.cuda.driver
        for l in launches:
            fn = module.get_function(l.name)
            get = lambda attr: int(drv.funcGetAttribute(attr, fn.ptr))
            regs, static, local, maxt = get(_ATTR_REGS), get(_ATTR_SHARED), get(_ATTR_LOCAL), \
                get(_ATTR_MAX_THREADS)
            if l.smem > self.smem_default:
                if static + l.smem > self.dev.smem_per_block_optin:
                    raise E.InternalError(f"{l.name} needs {l.smem} B of shared memory, the device "
                                          f"allows {self.dev.smem_per_block_optin}")
                drv.funcSetAttribute(fn.ptr, _ATTR_MAX_DYN_SHARED, l.smem)
            block = self._choose_block(fn, l, regs, static, maxt)
            bps = blocks_per_sm(cp, fn, block, l.smem, regs, static, self.dev, self.warp)
            if bps < 1:
                raise E.InternalError(f"{l.name} cannot run on {self.dev.name}: {regs} registers, "
                                      f"{static + l.smem} B shared memory for {block} threads")
            cap = bps * self.dev.sms
            if l.cluster > 1:
                # a cluster's blocks run on one GPC at once: the driver counts the clusters
                # that fit (its own answer, else SMs / cluster, rounded to whole clusters)
                clusters = tma.max_active_clusters(fn.ptr, block, l.smem, l.cluster, self.dev.sms)
                cap = (clusters * l.cluster) if clusters else cap // l.cluster * l.cluster
            info = KernelInfo(l, regs, static, local, maxt, block, bps, cap)
            kernels[l.name] = (fn, info)
        return module, kernels

    def bind(self, values: dict) -> "CudaFunction":
        """This function at a symbolic plan's sizes: outputs and temporaries of those sizes,
        the grids of plan.units, the size table (int64 per symbol) on the device."""
        b = copy.copy(self)
        p = self.plan
        b.outputs = tuple((evaluate_shape(s, values), d) for s, d in p.part.buffers.outputs)
        b.temps = tuple((evaluate_shape(s, values), d) for s, d in p.part.buffers.temps)
        b.launches = at_sizes(self.launches, p.units, values)
        b.by_name = {l.name: l for l in b.launches}
        b.sizes = self.cp.asarray(np.array([values[n] for n in p.symbols], np.int64))
        return b

    def _unaligned_kernel(self, name: str):
        """The kernel `name` of the module for pointers of any alignment (built on first need:
        a view that starts mid-vector, such as x[1:])."""
        with self._unaligned_lock:
            if self._unaligned is None:
                cubin, launches = module_cubin(self.plan, device_arch(), aligned=False)
                self._unaligned = self._load(cubin, launches)
        return self._unaligned[1][name]

    def _choose_block(self, fn, l, regs, static, maxt) -> int:
        """Block size: the kernel's own for reductions and matmul (their code is laid out for
        it); for grid-stride elementwise kernels the size at most its bound that keeps the
        most threads resident (ties: the larger block)."""
        if l.kind != "elementwise":
            return l.threads
        best, best_res = l.threads, -1
        b = min(l.threads, maxt)
        while b >= 64:
            res = blocks_per_sm(self.cp, fn, b, 0, regs, static, self.dev, self.warp) * b
            if res > best_res:
                best, best_res = b, res
            b //= 2
        return best

    def describe(self) -> str:
        lines = [f"device: {self.dev.describe()}"]
        for l in self.launches:
            lines.append("  " + self.kernels[l.name][1].describe(self.dev))
        return "\n".join(lines)

    # -- calling -----------------------------------------------------------------------------
    def _grid(self, l, info: KernelInfo) -> tuple | None:
        g = l.grid
        if g[0] == "stride":
            n = g[1] * max(1, l.threads // info.block)
            if n > MAX_GRID_X:       # each thread makes one step: the grid must cover the array
                raise E.ArgumentError(f"{l.name} needs {n} blocks of {info.block} threads, more "
                                      f"than a grid holds ({MAX_GRID_X})",
                                      hint="split the array into parts of under 2^40 elements")
            return (n, 1, 1) if n else None
        if g[0] == "rows":
            return (g[1], 1, 1) if g[1] else None
        if g[0] == "persistent":          # a block per resident slot, each looping over the work
            return (min(g[1], info.grid_cap), 1, 1) if g[1] else None
        if g[0] == "split":
            rows, most = g[1], g[2]
            if rows == 0:
                return None
            parts = max(1, min(most, info.grid_cap // rows))
            return (rows * parts, 1, 1)
        x, y, z = g[1:]
        return (x, y, z) if x and y and z else None

    def _stream(self, family, device):
        cp = self.cp
        if family == "torch":
            import torch
            ptr = torch.cuda.current_stream(device).cuda_stream
            s = self._streams.get(ptr)
            if s is None:
                import warnings
                with warnings.catch_warnings():      # cupy 14 prefers Stream.from_external
                    warnings.simplefilter("ignore", DeprecationWarning)
                    s = self._streams[ptr] = cp.cuda.ExternalStream(ptr, device)
            return s
        return cp.cuda.get_current_stream()

    def call(self, args, out=None, single=True):
        cp = self.cp
        specs = self.specs
        family, device = "numpy", None
        ptrs, keep = [], []
        for i, (a, s) in enumerate(zip(args, specs)):
            if s.kind == "scalar":
                ptrs.append(scalar_value(a, s.dtype))
                continue
            dv = device_view(a) if not isinstance(a, np.ndarray) else None
            if dv is None:
                x = np.ascontiguousarray(a)
                if np_dtype_name(x.dtype) == "bfloat16":
                    x = x.view(np.uint16)
                d = cp.asarray(x)
                keep.append(d)
                ptrs.append(d.data.ptr)
                continue
            ptr, shape, strides, dtype, dev, fam = dv
            if device is None:
                device = dev
            elif dev != device:
                raise E.ArgumentError(f"argument {i} is on GPU {dev}, an earlier one on GPU {device}",
                                      hint="move the arrays to one device (x.to('cuda:0'), cp.asarray)")
            if family == "numpy" or fam == "torch":
                family = fam         # torch tensors in: torch tensors out
            ptrs.append(ptr)
        if device is None:
            device = cp.cuda.Device().id
        with cp.cuda.Device(device):
            outs = self._outputs(family, device, out)
            out_ptrs = [array_ptr(o) for o in outs]
            temps = [cp.empty(max(1, math.prod(s)) * np.dtype(storage(d)).itemsize, np.uint8)
                     for s, d in self.temps]
            bufs = ptrs + out_ptrs + [t.data.ptr for t in temps] + \
                ([self.sizes.data.ptr] if self.sizes is not None else [])
            stream = self._stream(family, device)
            self._launch(bufs, stream)
            if family == "numpy":
                res = [to_host(o) for o in outs]
                if out is not None:
                    for dst, r in zip(out if isinstance(out, (tuple, list)) else [out], res):
                        np.copyto(dst, r.view(dst.dtype) if r.dtype != dst.dtype else r)
                    res = list(out) if isinstance(out, (tuple, list)) else [out]
                outs = res
        final = []
        for o, (shape, _) in zip(outs, self.outputs):
            if len(shape) == 0 and family == "numpy" and out is None:
                o = o[()]
            final.append(o)
        return final[0] if single else tuple(final)

    def _outputs(self, family, device, out):
        cp = self.cp
        if out is not None:
            outs = list(out) if isinstance(out, (tuple, list)) else [out]
            if len(outs) != len(self.outputs):
                raise E.ArgumentError(f"out= has {len(outs)} array(s), the kernel returns "
                                      f"{len(self.outputs)}")
            res = []
            for k, (o, (shape, dtype)) in enumerate(zip(outs, self.outputs)):
                if isinstance(o, np.ndarray):
                    if o.shape != tuple(shape) or np_dtype_name(o.dtype) != dtype:
                        raise E.ArgumentError(f"out[{k}] must be a {dtype} array of shape {tuple(shape)}")
                    res.append(cp.empty(shape, storage(dtype)))
                    continue
                dv = device_view(o)
                if dv is None or dv[1] != tuple(shape) or dv[3] != dtype or \
                        dv[2] != contiguous_strides(shape) and math.prod(shape) > 1:
                    raise E.ArgumentError(
                        f"out[{k}] must be a C-contiguous {dtype} array of shape {tuple(shape)} "
                        "on the GPU", hint="allocate it with cupy.empty or torch.empty")
                res.append(o)
            return res
        if family == "torch":
            import torch
            dev = torch.device("cuda", device)
            return [torch.empty(tuple(s), dtype=getattr(torch, d), device=dev) for s, d in self.outputs]
        outs = []
        for s, d in self.outputs:
            if d == "bfloat16" and family != "numpy":
                try:
                    import ml_dtypes
                    outs.append(cp.empty(s, ml_dtypes.bfloat16))
                    continue
                except Exception:
                    raise E.DTypeError("this kernel returns bfloat16, which cupy arrays cannot hold",
                                       hint="pass torch tensors (torch bfloat16 outputs) or numpy "
                                            "arrays (ml_dtypes bfloat16)") from None
            outs.append(cp.empty(s, storage(d) if family == "numpy" else d))
        return outs

    def _launch(self, bufs, stream):
        cp = self.cp
        ws = None
        for l in self.launches:
            if l.standby:
                continue
            fn, info = self.kernels[l.name]
            if l.align and any(bufs[b] % al for b, al in l.align):
                fn, info = self.kernels[l.fallback] if l.fallback else self._unaligned_kernel(l.name)
                l = self.by_name[info.launch.name]      # (its grid at a bound plan's sizes)
            grid = self._grid(l, info)
            if grid is None:
                continue
            if l.tmaps:
                maps = [self._maps.get(bufs[spec[0]], spec) for spec in l.tmaps]
                tma.launch(fn.ptr, grid, info.block, l.smem, stream.ptr, maps,
                           [bufs[b] for b, _, _ in l.params])
                continue
            args = [bufs[b] if kind == "scalar" else np.uint64(bufs[b]) for b, kind, _ in l.params]
            coop = False
            if l.workspace and l.grid[0] == "tiles":
                # a matmul's split K: a counter per tile, then each (tile, part)'s partial tile
                tiles = grid[0] * grid[1] * (grid[2] // l.passes)
                ws = cp.empty(tiles + tiles * l.passes * l.workspace, np.uint64)
                cp.cuda.runtime.memsetAsync(ws.data.ptr, 0, tiles * 8, stream.ptr)
                args.append(np.uint64(ws.data.ptr))
            elif l.workspace:
                rows, parts = l.grid[1], grid[0] // l.grid[1]
                n = rows + max(1, l.passes) * rows * parts * l.workspace
                ws = cp.empty(n, np.uint64)
                cp.cuda.runtime.memsetAsync(ws.data.ptr, 0, rows * 8, stream.ptr)
                args.append(np.uint64(ws.data.ptr))
                coop = l.barrier
            if coop:
                # a cooperative launch checks that the row's blocks are co-resident; the grid
                # is sized to fit the resident blocks (_grid) either way
                try:
                    fn(grid, (info.block, 1, 1), tuple(args), shared_mem=l.smem, stream=stream,
                       enable_cooperative_groups=True)
                    continue
                except TypeError:
                    pass
            fn(grid, (info.block, 1, 1), tuple(args), shared_mem=l.smem, stream=stream)

    def run(self, buffers: tuple) -> None:
        """The CPU calling convention (inputs, outputs, temporaries as numpy arrays): compute
        on the device, results copied into the output arrays."""
        n_in, n_out = self.n_inputs, len(self.outputs)
        ins = list(buffers[:n_in])
        outs = list(buffers[n_in:n_in + n_out])
        args = [a[()] if s.kind == "scalar" else a for a, s in zip(ins, self.specs)]
        res = self.call(args, out=outs, single=False)
        del res


def build(p):
    """A CudaFunction for the plan on the current device (its cubin from the cache or NVRTC)."""
    cp = require_cupy(f"running target {p.target.name}")
    arch = device_arch()
    if not runs_on(p.target, arch):
        raise E.TargetError(
            f"target {p.target.name} generates code for {p.target.arch}, and this GPU is "
            f"compute capability {arch // 10}.{arch % 10}",
            hint="use target 'cuda' (this GPU's architecture)")
    cubin, launches = module_cubin(p, arch)
    return CudaFunction(p, cubin, launches, cp)
