"""The local stack: emulators of the services the connector talks to, and a local Functions host.

Each emulator is a product of its own: it starts standalone (``python -m emulators.<name>``),
prints one JSON line saying how to reach it, and behaves like the real service as far as the
connector can observe, failing loudly on anything it does not support.
"""
