"""Cut the model and its tokenizer to the kept tokens: `surgery` (embedding rows), `tokenizer_remap`
(new ids, `IdMap`), `coverage` (does the trimmed tokenizer still tokenize real text the same), `job`
(`langtrim trim`).
"""
