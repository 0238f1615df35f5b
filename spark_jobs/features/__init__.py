"""Feature groups: pure DataFrame -> DataFrame transforms over the base price frame."""
