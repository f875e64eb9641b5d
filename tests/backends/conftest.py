"""torch, where installed, is imported before torsh-jit's modules: on the H100 image, torch
imported late inside pytest failed to parse one of its own operator schemas."""
try:
    import torch  # noqa: F401
except Exception:       # no torch: the tests that need it skip
    pass
