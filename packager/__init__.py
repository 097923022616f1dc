"""langtrim's build-time package: select tokens, trim a model, remap its tokenizer, pack and check a bundle.

Sub-packages, in pipeline order: `models` (where a model comes from), `selection` (which tokens to keep),
`counting` (token statistics at any scale), `trim`, `pack`, `bench`; `cli` is the `langtrim` command. It may
import torch, transformers and optimum; import those lazily inside functions where a command that does not
need them (such as `langtrim --help`) should stay fast.
"""
