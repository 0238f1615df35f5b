"""Gold tables as a day x stock panel, windows gathered by index, day batches and day graphs."""
