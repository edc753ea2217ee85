"""Raw ceilings for ``make bench``: the same work without FastStream or pydantic.

Each module is a small script run as its own process (``python -m tools.bench.raw_broker ...``)
that prints one JSON object with its figures on its last line of output.
"""
