"""Checks: ``arguments`` (Python arguments, shapes and dtypes; raise now) and ``values`` (the values inside
arrays: ids and lengths; now when concrete, under ``checkify`` when traced)."""
