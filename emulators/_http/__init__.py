"""Shared HTTPS + OAuth base for the HTTP emulators (Dataverse, Business Central).

What you get from :class:`EmulatorServer`:

- a local CA made at start (``server.tls.ca_bundle``) and a 127.0.0.1/localhost certificate;
- a token issuer on the same origin (``server.issuer``): ``{authority}/v2.0/.well-known/
  openid-configuration`` and ``{authority}/oauth2/v2.0/token`` for MSAL's client-credentials
  flow, RS256 JWTs whose ``aud`` is the ``<resource>`` of the ``<resource>/.default`` scope, and
  Entra's AADSTS error bodies (bad secret 7000215, unknown resource 500011, unknown client 700016);
- the back door under ``/_emulator/`` (header ``X-Emulator-Admin-Key``): ``seed``, ``snapshot``,
  ``restore``, ``reset``, ``faults`` (fail / throttle / delay / drop-after-commit), ``costs``
  (server-time cost model and time scale), ``token`` (mint expired or foreign tokens), ``auth``
  (token lifetime), plus your own actions through :meth:`EmulatorApi.admin`;
- :func:`print_start_line` for the one JSON readiness line.

Building an emulator::

    class MyApi(EmulatorApi):
        def __init__(self, server: EmulatorServer) -> None:
            self.server = server

        def handle(self, request):            # the one dispatch point
            try:
                claims = self.server.issuer.validate(
                    request.headers.get("Authorization"), audiences=[RESOURCE])
            except BearerError as exc:
                return self.error_response(401, "Unauthorized", exc.description,
                                           {"WWW-Authenticate": exc.www_authenticate(AUTHORITY)})
            ...                                # route to one executor per operation

        def error_response(self, status, code, message, headers=None):
            ...                                # the API's own error shape (faults use it too)

    server = EmulatorServer(port=args.port, resources=[RESOURCE], name="myapi")
    server.mount(MyApi(server))
    print_start_line({**server.start_info(), "base_url": ...})
    server.serve_forever()                     # until SIGTERM

Raise ``NotImplementedError`` for anything unsupported: the server answers a loud 501 in your
error shape. Use ``server.costs`` (:class:`CostModel`) for server-time budgets: ``charge(op)``
gives the cost, ``window(limit=, window=)`` a :class:`SlidingWindow` on the scaled server clock.
Clients (tests, ``make run``) use :func:`https_session` and :class:`BackDoor` from
``emulators._http.client``.
"""

from emulators._http._faults import CostModel, Fault, FaultPlan, SlidingWindow
from emulators._http._oauth import BearerError, ClientApp, TokenIssuer
from emulators._http._server import (
    ADMIN_HEADER,
    AdminError,
    EmulatorApi,
    EmulatorServer,
    json_response,
    print_start_line,
)
from emulators._http._tls import TlsMaterial, make_tls_material

__all__ = [
    "ADMIN_HEADER",
    "AdminError",
    "BearerError",
    "ClientApp",
    "CostModel",
    "EmulatorApi",
    "EmulatorServer",
    "Fault",
    "FaultPlan",
    "SlidingWindow",
    "TlsMaterial",
    "TokenIssuer",
    "json_response",
    "make_tls_material",
    "print_start_line",
]
