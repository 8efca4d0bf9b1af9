"""Torch-free plumbing: errors, guards, flags, names, paths, atomic I/O, run records, progress, tables.

May import only the standard library, tqdm and each other, never torch (tests/test_layers.py);
`cli` imports `runtime.devices` after parsing, to resolve the default `--device`.
"""
