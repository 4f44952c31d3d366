"""Benchmark helpers: the plain-DSPy side of the peer comparison (`bench/peers.ts`)."""
