"""The embedded setup's token issuer: one ES256 key pair under `<state dir>/auth/`, tokens on demand.

The private key is created once, readable by its owner only from the first byte
(`lakehouse.secret_files`), and never printed; `jwks.json` beside it holds the public key, which the APIs
trust by default (`LAKEHOUSE_AUTH_JWKS`). With another issuer configured, use that issuer's tokens.

    lakehouse token --scope catalog:read --scope features:read --tenant tenant-a [--ttl 3600]
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import hashlib
import json
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from lakehouse.auth import ADMIN, SCOPES, AuthSettings, local_issuer_dir, parse_scopes
from lakehouse.secret_files import create_secret, private_dir, write_secret

ALGORITHM = "ES256"
DEFAULT_TTL_SECONDS = 3600


def _thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 thumbprint of an EC public key: a stable `kid`."""
    members = {k: jwk[k] for k in ("crv", "kty", "x", "y")}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()


class LocalIssuer:
    def __init__(self, folder: Path | None = None):
        self.folder = folder or local_issuer_dir()

    @property
    def jwks_path(self) -> Path:
        return self.folder / "jwks.json"

    def _private_key(self) -> ec.EllipticCurvePrivateKey:
        private_dir(self.folder)
        pem = (
            ec.generate_private_key(ec.SECP256R1())
            .private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            .decode()
        )
        # Two processes racing here both end up with the key that was linked first.
        pem = create_secret(self.folder / "issuer-key.pem", pem)
        key = serialization.load_pem_private_key(pem.encode(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{self.folder / 'issuer-key.pem'} holds no elliptic-curve private key")
        return key

    def ensure_keys(self) -> tuple[ec.EllipticCurvePrivateKey, str]:
        """The key pair (created on first use) and its `kid`; `jwks.json` is (re)written to match it."""
        key = self._private_key()
        public = ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
        kid = _thumbprint(public)
        jwks = json.dumps({"keys": [{**public, "kid": kid, "alg": ALGORITHM, "use": "sig"}]}, indent=2)
        if not self.jwks_path.exists() or self.jwks_path.read_text() != jwks:
            write_secret(self.jwks_path, jwks)
        return key, kid

    def issue(
        self,
        scopes: Sequence[str],
        tenant: str | None = None,
        subject: str = "local-user",
        ttl_seconds: int = DEFAULT_TTL_SECONDS,
        settings: AuthSettings | None = None,
        **claims: Any,
    ) -> str:
        """A signed token for `settings`' issuer and audience with these scopes and tenant."""
        settings = settings or AuthSettings.from_env()
        key, kid = self.ensure_keys()
        now = dt.datetime.now(dt.UTC)
        payload = {
            "iss": settings.issuer,
            "aud": settings.audience,
            "sub": subject,
            "iat": now,
            "nbf": now,
            "exp": now + dt.timedelta(seconds=ttl_seconds),
            "jti": uuid.uuid4().hex,
            "scope": " ".join(scopes),
            **claims,
        }
        if tenant is not None:
            payload[settings.tenant_claim] = tenant
        return jwt.encode(payload, key, algorithm=ALGORITHM, headers={"kid": kid})


def _token(args: argparse.Namespace) -> int:
    try:
        scopes = parse_scopes(args.scope)
    except ValueError as error:
        print(f"lakehouse token: {error}", file=sys.stderr)
        return 2
    if args.tenant is None and ADMIN not in scopes:
        print(
            f"lakehouse token: without {ADMIN} a token needs --tenant (the APIs refuse it)", file=sys.stderr
        )
        return 2
    settings, issuer = AuthSettings.from_env(), LocalIssuer()
    if settings.jwks != str(issuer.jwks_path):
        print(
            f"note: the APIs trust {settings.jwks} (LAKEHOUSE_AUTH_JWKS), not this local issuer",
            file=sys.stderr,
        )
    print(
        issuer.issue(
            scopes, tenant=args.tenant, subject=args.subject, ttl_seconds=args.ttl, settings=settings
        )
    )
    return 0


def add_parser(commands) -> None:
    """Register `token` on the `lakehouse` command's subparsers."""
    parser = commands.add_parser("token", help="print a bearer token of the local issuer (embedded setup)")
    parser.add_argument(
        "--scope",
        action="append",
        required=True,
        help=f"a scope (repeatable, or space-separated): {', '.join(SCOPES)}",
    )
    parser.add_argument("--tenant", help="the tenant the token is scoped to (needed without platform:admin)")
    parser.add_argument("--subject", default="local-user", help="the token's `sub`")
    parser.add_argument("--ttl", type=int, default=DEFAULT_TTL_SECONDS, help="seconds until it expires")
    parser.set_defaults(handler=_token)
