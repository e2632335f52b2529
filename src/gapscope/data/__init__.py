"""Corpora: reading every supported format into normalised rows, auditing them, synthesising them."""
