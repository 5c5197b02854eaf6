"""TFDS builders for the public IQA sets, from the files their owners distribute."""
