"""OHLCV sources behind one interface: :func:`cryptocast.data.sources.load_ohlcv`."""
