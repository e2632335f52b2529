"""Studies: the spec, the paradigms that turn corpora into train/test sets, and the runner."""
