"""Turn a trimmed model into a bundle: `export` (optimum), `quantize` (optimize, then quantize), `parity`
(the report and its gates), `job` (`langtrim pack`).
"""
