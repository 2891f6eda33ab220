"""Benchmarks: deepgrad against PyTorch CPU, in the same process, with the same thread count.

Not part of the installed package. Run ``python -m bench --help`` from the repository root.

NOTE: this file must not import NumPy or torch: ``bench.run`` sets the BLAS/OpenMP thread
environment variables before either library loads its thread pool.
"""
