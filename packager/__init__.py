"""langtrim's build-time package: select tokens, trim a model, remap its tokenizer (and later export).

It may import torch, transformers and optimum; import those lazily inside functions where a command that
does not need them (such as `langtrim --help`) should stay fast.
"""
