"""The one error type of the OData query module.

Each emulator maps it to its own wire error (Dataverse: 400 with an ``0x...`` code; BC: 400 with
``BadRequest``), so the module itself stays free of any API's error vocabulary.
"""

from __future__ import annotations

from typing import Literal

ODataErrorKind = Literal["syntax", "unsupported", "unknown_property", "invalid_value"]


class ODataQueryError(ValueError):
    """A query option the module cannot parse or will not evaluate.

    ``kind`` says why, so an emulator can pick the right code and message:

    * ``syntax``: the text is malformed (unbalanced parenthesis, bad literal, ...).
    * ``unsupported``: valid OData that the module deliberately does not implement (``any``,
      ``$search``, arithmetic operators, ...). Emulators must answer 400, never guess.
    * ``unknown_property``: a property name the caller's schema check rejected.
    * ``invalid_value``: a value of the wrong shape, e.g. ``$top=-1``.
    """

    def __init__(self, message: str, *, kind: ODataErrorKind = "syntax", option: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.kind: ODataErrorKind = kind
        self.option = option
