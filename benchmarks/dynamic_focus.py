"""Exact against dynamic kernels on this CPU, the rows of benchmarks/cpu.py at their sizes,
short and interleaved: each round times exact, batch-symbolic and all-symbolic back to back
(7 rounds of 7 calls, medians), so a noisy neighbour falls on all three alike. A quicker
check than benchmarks/dynamic.py, which also times first calls at new sizes.

    python benchmarks/dynamic_focus.py
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np, torsh_jit as tj, time
rng=np.random.default_rng(0)
def softmax(x):
    e = tj.exp(x - x.max(axis=-1, keepdims=True)); return e / e.sum(axis=-1, keepdims=True)
def layernorm(x, w, b):
    mu = x.mean(axis=-1, keepdims=True); var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    return (x - mu) / tj.sqrt(var + 1e-5) * w + b
n=16<<20
a,b,c=(rng.standard_normal(n).astype(np.float32) for _ in range(3))
x=rng.standard_normal((4096,1024)).astype(np.float32); w=rng.standard_normal(1024).astype(np.float32)
rows={"triad":(lambda a,b,c:a*b+c,(a,b,c)),
      "chain":(lambda a,b,c: tj.exp(a)*b+tj.sin(c)*0.5-tj.tanh(a*c),(a,b,c)),
      "softmax":(softmax,(x,)),"layernorm":(layernorm,(x,w,w)),
      "sum":(lambda a: a.sum(),(a,)),
      "a-b.mean()":(lambda a,b: a-b.mean(),(a[:1<<20],b[:1<<20])),
      "matmul":(lambda p,q:p@q,(x[:1024],x[:1024].T.copy())),
      "colsum":(lambda x: x.sum(axis=0),(x,)),
      "softmax F":(softmax,(np.asfortranarray(x),))}
print("ratio = exact time / dynamic time (batch: dynamic={0: \"batch\"}; all: dynamic=True)")
for name,(f,args) in rows.items():
    ks={"exact":tj.kernel(f,dynamic=False),"batch":tj.kernel(f,dynamic={0:"batch"}),"all":tj.kernel(f,dynamic=True)}
    for k in ks.values(): k(*args)
    res={m:[] for m in ks}
    for r in range(7):
        for m,k in ks.items():
            ts=[]
            for _ in range(7):
                t0=time.perf_counter(); k(*args); ts.append(time.perf_counter()-t0)
            res[m].append(np.median(ts))
    e=np.median(res["exact"]); bt=np.median(res["batch"]); al=np.median(res["all"])
    print(f"{name:12s} exact {e*1e3:8.3f} ms  batch {e/bt:5.3f}  all {e/al:5.3f}", flush=True)
