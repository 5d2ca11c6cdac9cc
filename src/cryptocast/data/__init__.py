"""Candles in, checked candles out: the sources behind one interface
(:func:`cryptocast.data.sources.load_ohlcv`: exchange, files, sample, scenarios) and the
OHLCV contract with its documented repairs (:mod:`cryptocast.data.validation`).

May import: the kernel (``config``, ``contracts``, ``errors``, ``paths`` ...) only.
"""
