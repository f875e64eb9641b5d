"""The torsh-jit command line."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def cli(*args, check=True):
    env = dict(os.environ)
    r = subprocess.run([sys.executable, "-m", "torsh_jit.cli", *args], env=env, capture_output=True,
                       text=True, timeout=300, cwd=ROOT)
    if check:
        assert r.returncode == 0, r.stdout + r.stderr
    return r


def test_targets_lists_every_target_and_host():
    out = cli("targets").stdout
    for name in ("x86_64-sse42", "x86_64-avx2", "x86_64-avx512"):
        assert name in out
    assert "(host)" in out


def test_explain_shows_graph_groups_config_and_source():
    out = cli("explain", "examples/softmax.py:softmax", "--arg", "f32[64,100]").stdout
    assert "== graph (as traced)" in out
    assert "after pass cse" in out
    assert "groups: 1 kernel(s)" in out
    assert "config: Config(lanes=" in out
    assert "define void @" in out           # the LLVM IR itself


def test_explain_bad_arg_spec_is_a_clear_error():
    r = cli("explain", "examples/softmax.py:softmax", "--arg", "float[3]", check=False)
    assert r.returncode == 2
    assert "dtype[shape]" in r.stderr and "Traceback" not in r.stderr


def test_explain_missing_function_lists_the_ones_there():
    r = cli("explain", "examples/softmax.py:nosuch", "--arg", "f32[4]", check=False)
    assert r.returncode == 2 and "softmax" in r.stderr


def test_cache_info_and_clear(tmp_path):
    env_dir = str(tmp_path)
    os.environ["TORSH_JIT_CACHE_DIR"], old = env_dir, os.environ["TORSH_JIT_CACHE_DIR"]
    try:
        cli("explain", "examples/gelu.py:gelu_mul", "--arg", "f32[10]", "--arg", "f32[10]", "--no-source")
        info = cli("cache", "info").stdout
        assert env_dir in info
        assert "removed" in cli("cache", "clear").stdout
    finally:
        os.environ["TORSH_JIT_CACHE_DIR"] = old


def test_demo_runs(tmp_path):
    out = cli("demo", "--size", "65536").stdout
    assert "softmax" in out and "speed-up" in out and "cache:" in out


def test_version_and_python_dash_m():
    import torsh_jit as tj
    out = subprocess.run([sys.executable, "-m", "torsh_jit", "--version"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == f"torsh-jit {tj.__version__}"
    assert "targets" in subprocess.run([sys.executable, "-m", "torsh_jit", "--help"],
                                       capture_output=True, text=True, timeout=120).stdout


def test_a_closed_pipe_ends_quietly(tmp_path):
    """`torsh-jit explain ... | head -1`: no BrokenPipeError traceback. The pipe is made
    4 KiB (Linux F_SETPIPE_SZ), so the 20 KB the command prints cannot all fit in it before
    the reader closes it."""
    import fcntl
    r, w = os.pipe()
    fcntl.fcntl(w, getattr(fcntl, "F_SETPIPE_SZ", 1031), 4096)
    p = subprocess.Popen([sys.executable, "-m", "torsh_jit", "explain", "examples/softmax.py:softmax",
                          "--arg", "f32[64,100]"], stdout=w, stderr=subprocess.PIPE, cwd=ROOT)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        assert f.readline().startswith(b"target:")
    err = p.stderr.read().decode()      # the reader is gone; the writer meets EPIPE
    p.wait(timeout=120)
    assert "Traceback" not in err and "BrokenPipeError" not in err, err


# -- explain --asm per target language ------------------------------------------------------
GELU = ("explain", "examples/gelu.py:gelu_mul", "--arg", "f32[10]", "--arg", "f32[10]", "--no-source")


def _env_with_path(path: str) -> dict:
    return {**os.environ, "PATH": path}


def test_explain_asm_on_cuda_shows_ptx_and_says_what_sass_needs(tmp_path):
    """NVRTC makes the PTX without a GPU; SASS needs the toolkit's cuobjdump or nvdisasm.
    A PATH without either (the cuda-python wheels ship neither) gets one line saying so."""
    import shutil
    path = os.pathsep.join(d for d in os.environ.get("PATH", "").split(os.pathsep)
                           if not any(os.path.exists(os.path.join(d, t)) for t in ("cuobjdump", "nvdisasm")))
    r = subprocess.run([sys.executable, "-m", "torsh_jit.cli", *GELU, "--target", "cuda-sm80", "--asm"],
                       env=_env_with_path(path), capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    asm = r.stdout.split("== assembly", 1)[1]
    assert ".target sm_80" in asm and ".entry tj_" in asm
    assert "SASS for sm_80: needs cuobjdump or nvdisasm on PATH" in asm
    assert shutil.which("cuobjdump", path=path) is None


def _explain_asm_with_cuobjdump(tmp_path, script: str):
    """`torsh-jit explain --asm` for CUDA with a stand-in cuobjdump (the shell script) on PATH;
    the command must succeed."""
    fake = tmp_path / "cuobjdump"
    fake.write_text(script)
    fake.chmod(0o755)
    r = subprocess.run([sys.executable, "-m", "torsh_jit.cli", *GELU, "--target", "cuda-sm80", "--asm"],
                       env=_env_with_path(f"{tmp_path}{os.pathsep}{os.environ.get('PATH', '')}"),
                       capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    return r


def test_explain_asm_on_cuda_shows_sass_where_cuobjdump_is_on_path(tmp_path):
    """A stand-in cuobjdump: what it prints of the cubin NVRTC made is the SASS section."""
    r = _explain_asm_with_cuobjdump(
        tmp_path, '#!/bin/sh\n[ "$1" = -sass ] && [ -s "$2" ] && echo "fake sass of a cubin"\n')
    assert ".target sm_80" in r.stdout
    assert "SASS for sm_80 (cuobjdump)\nfake sass of a cubin" in r.stdout


def test_explain_asm_on_cuda_keeps_the_ptx_when_cuobjdump_cannot_read_the_cubin(tmp_path):
    """CUDA 13.0's cuobjdump refused NVRTC's cubin on an H200 host ("does not contain device
    code"): the PTX is still printed, with a line saying why the SASS is missing."""
    r = _explain_asm_with_cuobjdump(
        tmp_path, "#!/bin/sh\necho \"cuobjdump info    : File '$2' does not contain device code\" >&2\n"
                  "exit 255\n")
    assert ".target sm_80" in r.stdout
    assert "SASS for sm_80: cuobjdump could not read NVRTC's cubin" in r.stdout
    assert "does not contain device code" in r.stdout


def test_explain_asm_on_metal_and_wgsl_says_there_is_none_and_shows_the_source():
    for target, lang in (("metal", "msl"), ("wgsl", "wgsl")):
        r = cli(*GELU, "--target", target, "--asm", check=False)
        assert r.returncode == 2, r.stdout + r.stderr
        assert "Traceback" not in r.stderr and "internal error" not in r.stderr
        assert f"target {target} has no assembly torsh-jit can show" in r.stderr
        assert "drop --asm" in r.stderr
        assert f"== generated source ({lang})" in r.stdout      # shown despite --no-source


def test_assembly_dispatches_by_language():
    """explain.assembly is what Lowered.asm() calls: LLVM, PTX, or a TargetError."""
    import numpy as np
    import pytest
    import torsh_jit as tj
    from torsh_jit import errors as E
    from torsh_jit.explain import assembly, has_assembly
    k = tj.kernel(lambda x: tj.exp(x) * 2)
    x = np.zeros(16, np.float32)
    host = k.lower(x)
    assert has_assembly(host.target) and ".text" in assembly(host.source, host.target)
    cu = k.lower(x, target="cuda-sm90")
    assert ".target sm_90" in assembly(cu.source, cu.target, cu.plan)
    for t in ("wgsl", "metal"):
        low = k.lower(x, target=t)
        assert not has_assembly(low.target)
        with pytest.raises(E.TargetError, match="no assembly"):
            assembly(low.source, low.target)


def test_lowered_asm_handles_every_language():
    """Lowered.asm() (kernel.py) goes through explain.assembly: PTX for CUDA, not LLVM's parser."""
    import numpy as np
    import pytest
    import torsh_jit as tj
    from torsh_jit import errors as E
    k = tj.kernel(lambda x: x + 1)
    x = np.zeros(8, np.float32)
    assert ".target sm_80" in k.lower(x, target="cuda-sm80").asm()
    with pytest.raises(E.TargetError, match="no assembly"):
        k.lower(x, target="wgsl").asm()


def test_compile_with_a_symbolic_size_names_the_parameter(tmp_path):
    import json
    r = cli("compile", "examples/gelu.py:gelu_mul", "--arg", "f32[n,1024]", "--arg", "f32[1024]",
            "--target", "host", "-o", str(tmp_path / "out"))
    assert "sizes n are parameters of gelu_mul()" in r.stdout
    entry = json.loads((tmp_path / "out" / "manifest.json").read_text())["entries"][0]
    assert [s["name"] for s in entry["symbols"]] == ["n"]
    assert entry["arguments"][0]["shape"] == ["n", 1024]
    h = (tmp_path / "out" / entry["files"]["header"]).read_text()
    assert "float *out0, int64_t n)" in h and "if (n < 0) return -2;" in h


def test_compile_bad_symbolic_dimension_is_a_clear_error(tmp_path):
    r = cli("compile", "examples/gelu.py:gelu_mul", "--arg", "f32[n+1,4]", "--arg", "f32[4]",
            "-o", str(tmp_path / "out"), check=False)
    assert r.returncode == 2 and "neither an integer nor a name" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "out").exists()
