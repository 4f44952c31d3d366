"""Benchmarks, comparisons with plain DSPy and experiments: run from the checkout, not shipped with dspex_consumers."""
