"""The built-in integration's default table mappings as data, one module per table, and their registry.

Use ``shared.mappings.registry`` (``default_mappings``, ``get_mapping``, ``definitions``,
``mapping_as_json``, ``load_overrides``) and ``shared.mappings.transforms.TRANSFORMS`` (the
transforms the engine applies by name). docs/mappings.md has every mapping as a table and the
gaps against the built-in integration.
"""
