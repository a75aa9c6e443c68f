"""casebench: speech emotion recognition under acoustic-semantic conflict — build corpora, score models."""

__version__ = "0.1.0"
