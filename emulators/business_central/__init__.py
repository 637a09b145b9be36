"""Business Central API v2.0 emulator (HTTPS, bearer tokens, BC's wire behaviour).

``python -m emulators.business_central --port N [--seed demo|large:N|empty]`` prints one JSON line
(``base_url``, ``token_url``, ``client_id``, ``client_secret``, ``scope``, ``ca_bundle``,
``company_id``, ``authority``, ``admin``) and serves until SIGTERM. Built on ``emulators._http``.
Fidelity targets: ``reference/wire-protocols.md`` §D and checklist §E.2.
"""
