"""Where a model comes from (the offline default, a local directory, the hub) and what its family needs.

`families` holds, as data, what differs between the models langtrim packs; `tokenizer` answers what every
stage asks of a tokenizer.
"""
