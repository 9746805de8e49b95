"""Bearer tokens for the data APIs (AIC data model §5: OAuth 2.0 tokens are required for all data access).

A token is a JWT from the configured issuer, verified with PyJWT against the issuer's public keys (a JWKS
file or URL): signature (asymmetric algorithms only, the key chosen by `kid`), issuer, audience, expiry.
It carries scopes (`scope`, space-separated, or `scp`, a list) and the caller's tenant (a claim).

| variable | default | meaning |
|---|---|---|
| LAKEHOUSE_AUTH_ISSUER | lakehouse-local | the `iss` a token must carry |
| LAKEHOUSE_AUTH_AUDIENCE | lakehouse-api | the `aud` a token must carry |
| LAKEHOUSE_AUTH_JWKS | `<state dir>/auth/jwks.json` (local issuer) | the issuer's keys: a JWKS file or URL |
| LAKEHOUSE_AUTH_TENANT_CLAIM | tenant_id | the claim naming the caller's tenant |
| LAKEHOUSE_AUTH_LEEWAY_SECONDS | 30 | clock skew allowed on `exp`, `nbf`, `iat` |

Scopes: `catalog:read` and `features:read` open the endpoints; `platform:admin` lifts tenant scoping
(platform-wide catalog entries, every tenant's feature rows). Without it a token needs a tenant claim.
Refusals never name a resource: they are about the token only.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import jwt
from fastapi import Depends, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from lakehouse.config import default_state_dir

CATALOG_READ = "catalog:read"
FEATURES_READ = "features:read"
ADMIN = "platform:admin"
SCOPES = (CATALOG_READ, FEATURES_READ, ADMIN)
DEFAULT_ISSUER = "lakehouse-local"
DEFAULT_AUDIENCE = "lakehouse-api"
# Asymmetric only: a symmetric algorithm would let anyone holding the public keys sign tokens.
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
REALM = "lakehouse"


def local_issuer_dir(state_dir: Path | None = None) -> Path:
    """Where the embedded setup's issuer keeps its key pair (`lakehouse.local_issuer`)."""
    return (state_dir or default_state_dir()) / "auth"


@dataclass(frozen=True)
class AuthSettings:
    issuer: str
    audience: str
    jwks: str  # a file path or an http(s) URL
    tenant_claim: str = "tenant_id"
    leeway_seconds: int = 30

    @classmethod
    def from_env(cls) -> AuthSettings:
        return cls(
            issuer=os.environ.get("LAKEHOUSE_AUTH_ISSUER", DEFAULT_ISSUER),
            audience=os.environ.get("LAKEHOUSE_AUTH_AUDIENCE", DEFAULT_AUDIENCE),
            jwks=os.environ.get("LAKEHOUSE_AUTH_JWKS") or str(local_issuer_dir() / "jwks.json"),
            tenant_claim=os.environ.get("LAKEHOUSE_AUTH_TENANT_CLAIM", "tenant_id"),
            leeway_seconds=int(os.environ.get("LAKEHOUSE_AUTH_LEEWAY_SECONDS", "30")),
        )

    @property
    def jwks_is_url(self) -> bool:
        return self.jwks.startswith(("https://", "http://"))


@dataclass(frozen=True)
class Principal:
    """Who called, as the verified token says."""

    subject: str | None
    tenant: str | None
    scopes: frozenset[str]

    @property
    def is_admin(self) -> bool:
        return ADMIN in self.scopes


class AuthError(Exception):
    """A refusal: status, a body that speaks of the token only, and RFC 6750's WWW-Authenticate."""

    def __init__(self, status: int, detail: str, error: str | None = None, scope: str | None = None):
        super().__init__(detail)
        self.status, self.detail, self.error, self.scope = status, detail, error, scope

    def http(self) -> HTTPException:
        if self.status not in (401, 403):  # the issuer's keys are unavailable: nothing to ask of the caller
            return HTTPException(self.status, detail=self.detail)
        challenge = f'Bearer realm="{REALM}"'
        if self.error:
            challenge += f', error="{self.error}", error_description="{self.detail}"'
        if self.scope:
            challenge += f', scope="{self.scope}"'
        return HTTPException(self.status, detail=self.detail, headers={"WWW-Authenticate": challenge})


def _invalid(detail: str) -> AuthError:
    return AuthError(401, detail, "invalid_token")


class TokenVerifier:
    """Checks tokens against the issuer's keys; a JWKS file is re-read when it changes (key rotation)."""

    def __init__(self, settings: AuthSettings):
        self.settings = settings
        self._client = (
            jwt.PyJWKClient(settings.jwks, cache_jwk_set=True, lifespan=300, timeout=10)
            if settings.jwks_is_url
            else None
        )
        self._file_keys: tuple[tuple[int, int], jwt.PyJWKSet] | None = None

    def _key(self, token: str, header: dict[str, Any]) -> Any:
        kid = header.get("kid")
        if self._client is not None:
            try:
                return self._client.get_signing_key_from_jwt(token).key
            except jwt.PyJWKClientConnectionError as error:
                raise AuthError(503, "the token issuer's keys cannot be loaded") from error
            except jwt.PyJWKClientError as error:
                raise _invalid("the token is not signed by a key of the trusted issuer") from error
        path = Path(self.settings.jwks)
        try:
            stat = path.stat()
            stamp = (stat.st_mtime_ns, stat.st_size)
            if self._file_keys is None or self._file_keys[0] != stamp:
                self._file_keys = (stamp, jwt.PyJWKSet.from_dict(json.loads(path.read_text())))
        except (OSError, ValueError, jwt.PyJWKSetError) as error:
            raise AuthError(503, "the token issuer's keys cannot be loaded") from error
        keys = self._file_keys[1].keys
        found = [k for k in keys if k.key_id == kid] if kid else keys[:1] if len(keys) == 1 else []
        if not found:
            raise _invalid("the token is not signed by a key of the trusted issuer")
        return found[0].key

    def verify(self, token: str) -> Principal:
        """The token's principal, or AuthError (401) naming the check that failed."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as error:
            raise _invalid("the bearer token is not a well-formed JWT") from error
        if header.get("alg") not in ALGORITHMS:
            raise _invalid("the token's signing algorithm is not accepted")
        key = self._key(token, header)
        s = self.settings
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[header["alg"]],
                audience=s.audience,
                issuer=s.issuer,
                leeway=s.leeway_seconds,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError as error:
            raise _invalid("the token has expired") from error
        except jwt.InvalidIssuerError as error:
            raise _invalid("the token was not issued by the trusted issuer") from error
        except jwt.InvalidAudienceError as error:
            raise _invalid("the token is not meant for this API (audience)") from error
        except jwt.MissingRequiredClaimError as error:
            raise _invalid(f"the token has no {error.claim!r} claim") from error
        except (jwt.ImmatureSignatureError, jwt.InvalidIssuedAtError) as error:
            raise _invalid("the token is not valid yet") from error
        except jwt.PyJWTError as error:
            raise _invalid("the token's signature does not verify") from error
        tenant = claims.get(s.tenant_claim)
        if tenant is not None and (not isinstance(tenant, str) or not tenant):
            raise _invalid(f"the token's {s.tenant_claim!r} claim is not a tenant name")
        subject = claims.get("sub")
        return Principal(
            subject=str(subject) if subject is not None else None,
            tenant=tenant,
            scopes=_claimed_scopes(claims),
        )


def _claimed_scopes(claims: dict[str, Any]) -> frozenset[str]:
    """`scope` (RFC 8693: space-separated) and `scp` (a list or string, as some issuers send it)."""
    found: list[str] = []
    for value in (claims.get("scope"), claims.get("scp")):
        if isinstance(value, str):
            found += value.split()
        elif isinstance(value, list):
            found += [v for v in value if isinstance(v, str)]
    return frozenset(found)


class Problem(BaseModel):
    detail: str


AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "no bearer token, or one that does not verify"},
    403: {"model": Problem, "description": "the token lacks the scope, or a tenant claim, this needs"},
    503: {"model": Problem, "description": "the token issuer's keys cannot be loaded"},
}
_BEARER = HTTPBearer(
    auto_error=False,
    bearerFormat="JWT",
    description="A JWT of the configured issuer (`lakehouse token` in the embedded setup).",
)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)]


class Authenticator:
    """FastAPI dependencies that verify the bearer token and require a scope."""

    def __init__(self, settings: AuthSettings | None = None):
        self.settings = settings or AuthSettings.from_env()
        self.verifier = TokenVerifier(self.settings)

    def principal(self, token: str | None, scope: str) -> Principal:
        """The verified caller holding `scope` (and a tenant claim unless an admin), else AuthError."""
        if not token:
            raise AuthError(401, "a bearer token is required (Authorization: Bearer <JWT>)")
        principal = self.verifier.verify(token)
        if scope not in principal.scopes:
            raise AuthError(403, f"the token lacks the scope {scope!r}", "insufficient_scope", scope)
        if principal.tenant is None and not principal.is_admin:
            claim = self.settings.tenant_claim
            raise AuthError(
                403,
                f"the token has no {claim!r} claim and not the scope {ADMIN!r}",
                "insufficient_scope",
                ADMIN,
            )
        return principal

    def require(self, scope: str) -> Callable[..., Principal]:
        def dependency(credentials: Credentials) -> Principal:
            try:
                return self.principal(credentials.credentials if credentials else None, scope)
            except AuthError as error:
                raise error.http() from None

        return dependency


def parse_scopes(values: Sequence[str]) -> list[str]:
    """Scopes given as repeated and/or space- or comma-separated values, each one of SCOPES."""
    scopes = list(dict.fromkeys(s for v in values for s in v.replace(",", " ").split()))
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown or not scopes:
        raise ValueError(f"scopes must be among {', '.join(SCOPES)}; got {', '.join(unknown) or 'none'}")
    return scopes
