"""cache/keys.py writes each kind of key in one place, and the keys are those the callers
wrote inline before it existed: a changed key would retire every stored entry.

The expected values are computed here with the expressions the call sites used (compiler.plan,
the qemu, wasm and msl runners, the native runtime in backends/llvm/build.py, the CUDA cubin,
tune/records), never with the function under test. No hardware needed.
"""
from __future__ import annotations

import dataclasses
import hashlib

import numpy as np

import torsh_jit as tj
from torsh_jit import compiler
from torsh_jit.cache import keys, make_key
from torsh_jit.ir.tracer import spec_of
from torsh_jit.tune import records
from torsh_jit.version import __version__, code_hash

PLAN_KEY = "ab" * 32


def test_plan_identity_and_plan_key_are_the_old_dicts():
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    p, _ = tj.kernel(lambda x: np.exp(x).sum(1))._plan((spec_of(x),), target="host")
    what = {"groups": repr(p.part.groups), "buffers": repr(p.part.buffers),
            "configs": repr(p.configs), "target": dataclasses.asdict(p.target)}
    assert keys.plan_identity(p.part, p.configs, p.target) == make_key(what) == p.identity
    tools = compiler.toolchain_versions(p.target)
    old = make_key({"plan": make_key(what), "package": __version__, "code": code_hash(),
                    "tools": tools})
    assert keys.plan_key(p.identity, tools) == old == p.key


def test_artifact_keys_are_the_runners_and_cubins_old_dicts():
    # backends/runners/qemu.py exe_key
    assert keys.artifact_key(PLAN_KEY, harness="h" * 64, cc="gcc 13", flags=["-O2", "-static"],
                             probe=True) == \
        make_key({"plan": PLAN_KEY, "harness": "h" * 64, "cc": "gcc 13",
                  "flags": ["-O2", "-static"], "probe": True})
    # backends/runners/wasm.py wasm_key
    assert keys.artifact_key(PLAN_KEY, linker="wasm-ld 17", libc="c" * 64, exports=1) == \
        make_key({"plan": PLAN_KEY, "linker": "wasm-ld 17", "libc": "c" * 64, "exports": 1})
    # backends/runners/msl.py exe_key
    assert keys.artifact_key(PLAN_KEY, sources="s" * 64, cxx="clang 18", flags=("-O2",),
                             groups=64) == \
        make_key({"plan": PLAN_KEY, "sources": "s" * 64, "cxx": "clang 18", "flags": ("-O2",),
                  "groups": 64})
    # backends/cuda/cubin.py module_cubin, aligned and not
    opts = ("--gpu-architecture=sm_80", "-lineinfo")
    for aligned in (True, False):
        assert keys.artifact_key(PLAN_KEY, arch=80, options=opts,
                                 **({} if aligned else {"unaligned": True})) == \
            make_key({"plan": PLAN_KEY, "arch": 80, "options": opts,
                      **({} if aligned else {"unaligned": True})})


def test_runtime_key_is_the_old_dict():
    what = {"runtime": "define void @tj_fill_pointers() { ret void }",
            "triple": "x86_64-unknown-linux-gnu", "pause": "call void @llvm.x86.sse2.pause()"}
    assert keys.runtime_key(what, "17.0.6") == \
        make_key({**what, "llvm": "17.0.6", "code": code_hash()})
    assert keys.identity(what) == make_key(what)


def test_tuning_keys_are_the_old_dicts():
    subj = records.Subject("f:" + "0" * 32, "float32[64]", '{"cpu":"x"}', "d" * 64)
    parts = {"v": records.RECORD_VERSION, "kernel": subj.kernel, "bucket": subj.bucket,
             "device": subj.device, "code": subj.code}
    assert subj.decision_key() == make_key(parts)
    configs = [{"type": "Config", "vw": 8, "unroll": 2}]
    assert keys.tuning_key(records.RECORD_VERSION, subj.kernel, subj.bucket, subj.device,
                           subj.code, configs) == make_key({**parts, "configs": configs})


def test_make_key_of_a_fixed_dict_is_unchanged():
    """One literal value, so that make_key itself cannot drift with the functions above."""
    text = '{"exports":1,"plan":"' + PLAN_KEY + '"}'
    assert make_key({"plan": PLAN_KEY, "exports": 1}) == hashlib.sha256(text.encode("ascii")).hexdigest()
