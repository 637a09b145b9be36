"""Domain types: frozen dataclasses with no I/O and no SDK imports."""
