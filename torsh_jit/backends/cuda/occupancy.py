"""Occupancy: a device's limits per SM (DeviceInfo), a compiled kernel's registers, shared
memory and launch on it (KernelInfo), and how many of its blocks are resident on one SM."""
from __future__ import annotations

from dataclasses import dataclass

from ...once import once
from .hardware import require_cupy


@dataclass(frozen=True)
class DeviceInfo:
    id: int
    name: str
    arch: int
    sms: int
    threads_per_sm: int
    blocks_per_sm: int
    regs_per_sm: int
    smem_per_sm: int
    smem_per_block_optin: int

    def describe(self) -> str:
        return (f"{self.name} (compute capability {self.arch // 10}.{self.arch % 10}): {self.sms} SMs, "
                f"{self.threads_per_sm} threads, {self.blocks_per_sm} blocks, {self.regs_per_sm} "
                f"registers and {self.smem_per_sm // 1024} KiB shared memory per SM")


@once
def device_info(device: int) -> DeviceInfo:
    cp = require_cupy("reading the GPU's properties")
    d = cp.cuda.Device(device)
    props = cp.cuda.runtime.getDeviceProperties(device)
    name = props.get("name", b"GPU")
    name = name.decode() if isinstance(name, bytes) else str(name)
    p = lambda *keys: next(int(props[k]) for k in keys if k in props)   # noqa: E731
    return DeviceInfo(device, name, int(d.compute_capability), p("multiProcessorCount"),
                      p("maxThreadsPerMultiProcessor"), p("maxBlocksPerMultiProcessor"),
                      p("regsPerMultiprocessor"), p("sharedMemPerMultiprocessor"),
                      p("sharedMemPerBlockOptin"))


@dataclass(frozen=True)
class KernelInfo:
    """A compiled kernel on a device, and how it is launched there."""
    launch: object
    regs: int
    static_smem: int
    local_bytes: int
    max_threads: int
    block: int
    blocks_per_sm: int
    grid_cap: int          # blocks resident at once on the whole device

    def describe(self, dev: DeviceInfo) -> str:
        occ = self.blocks_per_sm * self.block / dev.threads_per_sm
        spill = (f", {self.local_bytes} B local memory (spills, or the stack of out-of-line "
                 "calls such as sin)") if self.local_bytes else ""
        return (f"{self.launch.name}: {self.regs} registers/thread, "
                f"{self.static_smem + self.launch.smem} B shared memory/block{spill}; block "
                f"{self.block} threads, {self.blocks_per_sm} resident block(s)/SM "
                f"({occ:.0%} of {dev.threads_per_sm} threads), {self.grid_cap} at once on "
                f"{dev.sms} SMs")


def blocks_per_sm(cp, fn, block: int, smem: int, regs: int, static_smem: int,
                  dev: DeviceInfo, warp: int = 32) -> int:
    """Blocks of `block` threads of the kernel resident on one SM: the driver's answer, else
    the CUDA occupancy rules (warps of `warp` threads, the target's warp_size)."""
    occ = getattr(cp.cuda.driver, "occupancyMaxActiveBlocksPerMultiprocessor", None)
    if occ is not None:
        try:
            return int(occ(fn.ptr, block, smem))
        except Exception:
            pass
    # the CUDA occupancy rules: warps, registers (256-register units per warp), shared memory
    warps = -(-block // warp)
    by_threads = dev.threads_per_sm // (warps * warp)
    regs_warp = -(-max(regs, 1) * warp // 256) * 256
    by_regs = dev.regs_per_sm // (regs_warp * warps)
    by_smem = dev.smem_per_sm // (static_smem + smem + 1024) if (static_smem + smem) else 1 << 30
    return max(0, min(dev.blocks_per_sm, by_threads, by_regs, by_smem))
