"""Annotated data to and from the interchange format: brat, CoNLL/BIO, PHEE, and the brief format."""
