"""Access tokens for Dataverse and Business Central: MSAL client credentials or a managed identity.

Tokens are cached and refreshed by MSAL (or azure-identity) in process; a new token is only
requested when the cached one is about to expire. Error texts name what is wrong in the
administrator's terms and never include the secret or the token.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any, Protocol

import msal
import requests

from shared.config import ClientCredential
from shared.errors import ConfigurationError, RetriableError

__all__ = ["ManagedIdentityTokenProvider", "MsalTokenProvider", "TokenProvider"]

# AADSTS codes → what an administrator should fix.
_AADSTS_DIAGNOSIS: dict[str, str] = {
    "AADSTS7000215": "the client secret is wrong",
    "AADSTS7000222": "the client secret has expired",
    "AADSTS700016": "no application with this client id exists in the tenant",
    "AADSTS700027": "the client certificate is not registered on the application",
    "AADSTS90002": "the tenant in the authority URL does not exist",
    "AADSTS500011": "the resource (API) was not found in the tenant: check the URL / scope",
    "AADSTS65001": "the application has no consent for this API",
}


class TokenProvider(Protocol):
    """Gives a bearer token for one API."""

    def token(self) -> str:
        """A valid access token. Raises ConfigurationError or RetriableError."""
        ...


def _credential_payload(credential: ClientCredential) -> str | dict[str, str]:
    if credential.certificate_path:
        pem = Path(credential.certificate_path).read_text(encoding="ascii")
        key = re.search(
            r"-----BEGIN (?:RSA |EC |ENCRYPTED )?PRIVATE KEY-----.+?-----END [A-Z ]*PRIVATE KEY-----", pem, re.S
        )
        cert = re.search(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", pem, re.S)
        if not key or not cert:
            raise ConfigurationError(
                f"{credential.certificate_path} must hold a PEM private key and certificate", code="BadCertificate"
            )
        # With the public certificate present, MSAL derives the SHA-256 thumbprint itself.
        return {"private_key": key.group(0), "public_certificate": cert.group(0)}
    return credential.client_secret or ""


class MsalTokenProvider:
    """Client-credentials tokens through MSAL, for one API (one scope)."""

    def __init__(self, api_name: str, credential: ClientCredential, scope: str, session: requests.Session) -> None:
        self._api_name = api_name
        self._credential = credential
        self._scope = scope
        self._session = session
        self._app: msal.ConfidentialClientApplication | None = None
        self._lock = threading.Lock()

    def _application(self) -> msal.ConfidentialClientApplication:
        with self._lock:
            if self._app is None:
                try:
                    self._app = msal.ConfidentialClientApplication(
                        self._credential.client_id,
                        client_credential=_credential_payload(self._credential),
                        authority=self._credential.authority,
                        http_client=self._session,
                        # A local stack's issuer is not a Microsoft cloud; real tenants validate
                        # the same way whatever these flags say because discovery is over HTTPS.
                        instance_discovery=False,
                        validate_authority=False,
                    )
                except ValueError as error:
                    raise ConfigurationError(
                        f"{self._api_name}: the authority {self._credential.authority} is not usable: {error}",
                        code="BadAuthority",
                    ) from error
                except requests.RequestException as error:
                    raise RetriableError(
                        f"{self._api_name}: the authority {self._credential.authority} is unreachable "
                        f"({type(error).__name__})",
                        code="AuthorityUnreachable",
                    ) from error
            return self._app

    def token(self) -> str:
        """A cached or fresh access token.

        Raises:
            ConfigurationError: the credential, client id, tenant or scope is wrong (named).
            RetriableError: the authority is unreachable.
        """
        try:
            result: dict[str, Any] = self._application().acquire_token_for_client(scopes=[self._scope])
        except requests.RequestException as error:
            raise RetriableError(
                f"{self._api_name}: the token endpoint is unreachable ({type(error).__name__})",
                code="AuthorityUnreachable",
            ) from error
        if "access_token" in result:
            return str(result["access_token"])
        description = str(result.get("error_description", ""))
        code = next((c for c in _AADSTS_DIAGNOSIS if description.startswith(c + ":") or f"{c}:" in description), None)
        diagnosis = _AADSTS_DIAGNOSIS.get(code or "", description.split("\r\n", 1)[0][:300] or "unknown error")
        raise ConfigurationError(
            f"{self._api_name}: cannot get a token for {self._scope} as client {self._credential.client_id}: "
            f"{diagnosis} ({result.get('error', 'error')}{', ' + code if code else ''})",
            code="TokenRequestFailed",
        )


class ManagedIdentityTokenProvider:
    """Tokens from the Function App's managed identity (no secret anywhere)."""

    def __init__(self, api_name: str, scope: str, client_id: str | None) -> None:
        from azure.identity import ManagedIdentityCredential

        self._api_name = api_name
        self._scope = scope
        self._credential = ManagedIdentityCredential(client_id=client_id)

    def token(self) -> str:
        """A cached or fresh access token. Raises ConfigurationError when no identity is available."""
        from azure.core.exceptions import ClientAuthenticationError

        try:
            return str(self._credential.get_token(self._scope).token)
        except ClientAuthenticationError as error:
            raise ConfigurationError(
                f"{self._api_name}: the managed identity could not get a token for {self._scope}: "
                f"{str(error).splitlines()[0][:300]}",
                code="ManagedIdentityFailed",
            ) from error
