"""Measure engines side by side in fresh processes: `measure` and `child` take the figures, `results`
keeps them as JSON, `report` and `plots` draw them, `job` is `langtrim bench`.
"""
