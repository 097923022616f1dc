"""What the commands show people: rich tables and progress bars; the same figures are in their JSON.

`trim.py` the trim report, `bundle.py` the pack, parity and inspect reports, `count.py` the live bars and
table of `count` (`bench`'s table is in `bench/report.py`); `tables.py` the layout every table shares.

Every table fits 80 columns with its headers whole and one line per row: where the figures would not fit,
they are split into two tables, headers are abbreviated with a legend below, and text of any length (paths,
descriptions) is a `key  value` list, not a column. `--json` has every figure in full.
"""
