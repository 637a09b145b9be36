"""A local Microsoft-identity-platform look-alike: discovery, client-credentials tokens, JWKS.

Only what MSAL Python's ``acquire_token_for_client`` touches is served, with Entra's error
shapes (``AADSTS`` codes) so that a client's error mapping can be exercised:

- ``GET  /{tenant}/v2.0/.well-known/openid-configuration``
- ``POST /{tenant}/oauth2/v2.0/token`` (``grant_type=client_credentials``, secret only)
- ``GET  /{tenant}/discovery/v2.0/keys``

Tokens are RS256 JWTs whose ``aud`` is the resource named by the ``<resource>/.default`` scope.
APIs check them with :meth:`TokenIssuer.validate`.
"""

from __future__ import annotations

import base64
import datetime as dt
import hmac
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from werkzeug.wrappers import Request, Response

__all__ = ["BearerError", "ClientApp", "TokenIssuer"]

_ROUTE = re.compile(
    r"^/(?P<tenant>[^/]+)/(?:(?P<discovery>v2\.0/\.well-known/openid-configuration)"
    r"|(?P<token>oauth2/v2\.0/token)|(?P<keys>discovery/v2\.0/keys))$"
)
# Scopes MSAL or other clients may add that say nothing about the resource.
_RESERVED_SCOPES = frozenset({"openid", "profile", "offline_access"})


@dataclass(frozen=True)
class ClientApp:
    """An app registration: who may ask for tokens, and with which application roles."""

    client_id: str
    client_secret: str
    roles: tuple[str, ...] = ()
    object_id: str = field(default_factory=lambda: str(uuid.uuid4()))


class BearerError(Exception):
    """The request's bearer token is missing or unacceptable.

    ``reason`` is one of ``missing``, ``malformed``, ``expired``, ``audience``, ``signature``,
    ``issuer``, ``not_yet_valid``; ``description`` is a human sentence for the error body.
    """

    def __init__(self, reason: str, description: str) -> None:
        super().__init__(description)
        self.reason = reason
        self.description = description

    def www_authenticate(self, authority: str) -> str:
        """A ``WWW-Authenticate`` value in the form Microsoft APIs send on 401."""
        return (
            f'Bearer authorization_uri="{authority}/oauth2/authorize", '
            f'error="invalid_token", error_description="{self.description}"'
        )


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


class TokenIssuer:
    """Issues and validates access tokens for one tenant on the emulator's own HTTPS origin.

    Args:
        origin: ``https://127.0.0.1:<port>``; the authority is ``{origin}/{tenant}``.
        tenant: tenant id (a GUID, as Entra uses).
        resources: resource URIs tokens may be issued for (the ``<resource>/.default`` part).
        clients: registered apps.
        token_lifetime: seconds a token lives; short in tests to exercise expiry.
    """

    def __init__(
        self,
        *,
        origin: str,
        tenant: str,
        resources: list[str],
        clients: list[ClientApp],
        token_lifetime: float = 3599.0,
    ) -> None:
        self.origin = origin.rstrip("/")
        self.tenant = tenant
        self.resources = [r.rstrip("/") for r in resources]
        self.clients = {c.client_id: c for c in clients}
        self.token_lifetime = token_lifetime
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._kid = uuid.uuid4().hex
        # A second key that is never published: tokens signed with it are "foreign" (same
        # claims, untrusted signer), which is what a token from another tenant looks like.
        self._foreign_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._lock = threading.Lock()
        self.issued = 0

    # -- identity ----------------------------------------------------------------------------
    @property
    def authority(self) -> str:
        """What a client passes to MSAL as ``authority``."""
        return f"{self.origin}/{self.tenant}"

    @property
    def token_url(self) -> str:
        """The token endpoint."""
        return f"{self.authority}/oauth2/v2.0/token"

    @property
    def issuer(self) -> str:
        """The ``iss`` claim of tokens this issuer signs."""
        return f"{self.authority}/v2.0"

    def handles(self, path: str) -> bool:
        """Whether ``path`` is one of the issuer's endpoints (for the server's dispatch)."""
        return _ROUTE.match(path) is not None

    # -- HTTP ----------------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        """Serve discovery, token and keys requests."""
        match = _ROUTE.match(request.path)
        if match is None:  # pragma: no cover - the server only routes matching paths here
            raise NotImplementedError(f"issuer: {request.method} {request.path} unsupported")
        if match["tenant"] != self.tenant:
            return self._aad_error(
                400,
                "invalid_tenant",
                90002,
                f"Tenant '{match['tenant']}' not found. Check to make sure you have the correct tenant "
                "ID and are signing into the correct cloud.",
            )
        if match["discovery"]:
            return _json(200, self._openid_configuration())
        if match["keys"]:
            return _json(200, {"keys": [self._jwk()]})
        if request.method != "POST":
            return self._aad_error(
                400,
                "invalid_request",
                900561,
                "The endpoint only accepts POST, OPTIONS requests. Received a GET request.",
            )
        return self._token(request)

    def _openid_configuration(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "token_endpoint": self.token_url,
            "authorization_endpoint": f"{self.authority}/oauth2/v2.0/authorize",
            "jwks_uri": f"{self.authority}/discovery/v2.0/keys",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "grant_types_supported": ["client_credentials"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "tenant_region_scope": "EU",
            "cloud_instance_name": "microsoftonline.com",
        }

    def _jwk(self) -> dict[str, str]:
        numbers = self._key.public_key().public_numbers()
        return {
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": self._kid,
            "n": _b64url_uint(numbers.n),
            "e": _b64url_uint(numbers.e),
        }

    def _token(self, request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs(request.get_data(as_text=True)).items()}
        client_id, client_secret = form.get("client_id", ""), form.get("client_secret")
        if request.authorization is not None and request.authorization.type == "basic":
            client_id = request.authorization.username or client_id
            client_secret = request.authorization.password
        grant = form.get("grant_type", "")
        if grant != "client_credentials":
            return self._aad_error(
                400,
                "unsupported_grant_type",
                70003,
                f"The app requested an unsupported grant type '{grant}'."
                if grant
                else "The request body must contain the following parameter: 'grant_type'.",
            )
        app = self.clients.get(client_id)
        if app is None:
            return self._aad_error(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory "
                f"'{self.tenant}'. This can happen if the application has not been installed by the "
                "administrator of the tenant or consented to by any user in the tenant. You may have "
                "sent your authentication request to the wrong tenant.",
            )
        if client_secret is None:
            return self._aad_error(
                401,
                "invalid_client",
                7000216,
                "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.",
            )
        if not hmac.compare_digest(client_secret.encode(), app.client_secret.encode()):
            return self._aad_error(
                401,
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is the "
                f"client secret value, not the client secret ID, for a secret added to app '{client_id}'.",
            )
        scopes = [s for s in form.get("scope", "").split() if s not in _RESERVED_SCOPES]
        if len(scopes) != 1 or not scopes[0].endswith("/.default"):
            return self._aad_error(
                400,
                "invalid_scope",
                1002012,
                f"The provided value for scope {form.get('scope', '')} is not valid. Client credential "
                "flows must have a scope value with /.default suffixed to the resource identifier "
                "(application ID URI).",
            )
        resource = scopes[0].removesuffix("/.default").rstrip("/")
        if resource not in self.resources:
            return self._aad_error(
                400,
                "invalid_resource",
                500011,
                f"The resource principal named {resource} was not found in the tenant named "
                f"{self.tenant}. This can happen if the application has not been installed by the "
                "administrator of the tenant or consented to by any user in the tenant. You might "
                "have sent your authentication request to the wrong tenant.",
            )
        token = self.mint(audience=resource, client_id=client_id)
        lifetime = round(self.token_lifetime)
        return _json(
            200,
            {
                "token_type": "Bearer",
                "expires_in": lifetime,
                "ext_expires_in": lifetime,
                "access_token": token,
            },
        )

    def _aad_error(self, status: int, error: str, code: int, text: str) -> Response:
        # Entra puts the AADSTS code first in the description and trace lines after it; clients
        # that classify errors read "error" and "error_codes". Entra answers invalid_client with
        # 401 (not 400), as captured responses in public issue threads show.
        now = dt.datetime.now(dt.UTC)
        trace_id, correlation_id = str(uuid.uuid4()), str(uuid.uuid4())
        stamp = now.strftime("%Y-%m-%d %H:%M:%SZ")
        return _json(
            status,
            {
                "error": error,
                "error_description": (
                    f"AADSTS{code}: {text}\r\nTrace ID: {trace_id}\r\nCorrelation ID: {correlation_id}"
                    f"\r\nTimestamp: {stamp}"
                ),
                "error_codes": [code],
                "timestamp": stamp,
                "trace_id": trace_id,
                "correlation_id": correlation_id,
                "error_uri": f"{self.origin}/error?code={code}",
            },
        )

    # -- tokens ---------------------------------------------------------------------------------
    def mint(
        self,
        *,
        audience: str,
        client_id: str | None = None,
        lifetime: float | None = None,
        foreign: bool = False,
        extra_claims: dict[str, Any] | None = None,
    ) -> str:
        """Sign a token directly (the back door uses this for expired or foreign tokens).

        ``lifetime`` may be negative to get an already-expired token; ``foreign`` signs with a
        key the issuer does not publish.
        """
        if client_id is None:
            client_id = next(iter(self.clients))
        app = self.clients.get(client_id)
        now = int(time.time())
        life = self.token_lifetime if lifetime is None else lifetime
        claims: dict[str, Any] = {
            "aud": audience.rstrip("/"),
            "iss": self.issuer,
            "iat": now,
            "nbf": now - (0 if life > 0 else 3600),
            "exp": now + int(life),
            "appid": client_id,
            "azp": client_id,
            "appidacr": "1",
            "idtyp": "app",
            "oid": app.object_id if app else str(uuid.uuid4()),
            "sub": app.object_id if app else str(uuid.uuid4()),
            "roles": list(app.roles) if app else [],
            "tid": self.tenant,
            "ver": "2.0",
            "uti": uuid.uuid4().hex,
        }
        claims.update(extra_claims or {})
        key = self._foreign_key if foreign else self._key
        with self._lock:
            self.issued += 1
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": self._kid})

    def validate(self, authorization: str | None, *, audiences: list[str]) -> dict[str, Any]:
        """Check an ``Authorization`` header value and return the token's claims.

        Raises:
            BearerError: missing, malformed, badly signed, expired, not yet valid, wrong issuer
                or an audience not in ``audiences``.
        """
        if not authorization:
            raise BearerError("missing", "The access token is missing.")
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise BearerError("malformed", "The authorization header is not a bearer token.")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise BearerError("malformed", "The access token is malformed.") from exc
        if header.get("alg") != "RS256" or header.get("kid") != self._kid:
            raise BearerError("signature", "The access token signature is invalid.")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._key.public_key(),
                algorithms=["RS256"],
                audience=[a.rstrip("/") for a in audiences],
                issuer=self.issuer,
                options={"require": ["exp", "aud", "iss"]},
                leeway=0,
            )
        except jwt.ExpiredSignatureError as exc:
            raise BearerError("expired", "The token is expired.") from exc
        except jwt.InvalidAudienceError as exc:
            raise BearerError("audience", "The audience of the token is invalid.") from exc
        except jwt.InvalidIssuerError as exc:
            raise BearerError("issuer", "The issuer of the token is invalid.") from exc
        except jwt.ImmatureSignatureError as exc:
            raise BearerError("not_yet_valid", "The token is not yet valid.") from exc
        except jwt.InvalidSignatureError as exc:
            raise BearerError("signature", "The access token signature is invalid.") from exc
        except jwt.PyJWTError as exc:
            raise BearerError("malformed", "The access token is malformed.") from exc
        return claims


def _json(status: int, body: Any) -> Response:
    return Response(json.dumps(body), status=status, content_type="application/json; charset=utf-8")
