"""The bottom layer: cells, unrolling, hand-written BPTT and the associative scan. Imports nothing above it."""
