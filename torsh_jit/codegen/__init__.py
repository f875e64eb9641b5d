"""Render: groups and configs into source text (LLVM IR, CUDA C, MSL, WGSL) through Jinja templates."""
