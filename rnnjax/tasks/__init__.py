"""Task architectures on top of the core: heads, seq2seq, decoding, CTC, captioning, losses and metrics."""

from rnnjax.checks.values import checked

__all__ = ["checked"]
