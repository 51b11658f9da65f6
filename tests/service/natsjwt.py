"""Decentralized NATS auth for tests, without `nsc`: operator, account and user nkeys, the JWTs
that bind them, a nats-server config that trusts the operator, and a user .creds file."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import nkeys

UNLIMITED = {"subs": -1, "data": -1, "payload": -1}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class Key:
    seed: bytes
    public: str

    @classmethod
    def new(cls, prefix: int) -> Key:
        seed = nkeys.encode_seed(os.urandom(32), prefix)
        return cls(seed, nkeys.from_seed(bytearray(seed)).public_key.decode())

    def sign(self, data: bytes) -> bytes:
        return nkeys.from_seed(bytearray(self.seed)).sign(data)


def jwt(issuer: Key, subject: str, name: str, nats: dict) -> str:
    """A JWT as nats-server's jwt library reads it: the jti is the base32 of the SHA-512/256
    of the claims without it, the signature an ed25519 one by the issuer's nkey."""
    claims = {"iat": int(time.time()), "iss": issuer.public, "name": name, "sub": subject,
              "nats": nats}
    digest = hashlib.new("sha512_256", json.dumps(claims).encode()).digest()
    claims["jti"] = base64.b32encode(digest).rstrip(b"=").decode()
    signing_input = (_b64(json.dumps({"typ": "JWT", "alg": "ed25519-nkey"}).encode()) + "."
                     + _b64(json.dumps(claims).encode()))
    return signing_input + "." + _b64(issuer.sign(signing_input.encode()))


@dataclass
class Operator:
    """An operator with one account (and a system account, which nats-server wants)."""

    key: Key = field(default_factory=lambda: Key.new(nkeys.PREFIX_BYTE_OPERATOR))
    account: Key = field(default_factory=lambda: Key.new(nkeys.PREFIX_BYTE_ACCOUNT))
    system: Key = field(default_factory=lambda: Key.new(nkeys.PREFIX_BYTE_ACCOUNT))

    def operator_jwt(self) -> str:
        return jwt(self.key, self.key.public, "test-operator",
                   {"type": "operator", "version": 2, "system_account": self.system.public})

    def account_jwt(self, account: Key, name: str) -> str:
        limits = {**UNLIMITED, "imports": -1, "exports": -1, "wildcards": True, "conn": -1,
                  "leaf": -1}
        return jwt(self.key, account.public, name,
                   {"type": "account", "version": 2, "limits": limits})

    def server_config(self) -> str:
        preload = {self.account.public: self.account_jwt(self.account, "dsiem"),
                   self.system.public: self.account_jwt(self.system, "SYS")}
        entries = "\n".join(f"  {k}: {v}" for k, v in preload.items())
        return (f"operator: {self.operator_jwt()}\n"
                f"system_account: {self.system.public}\n"
                f"resolver: MEMORY\n"
                f"resolver_preload: {{\n{entries}\n}}\n")

    def user_creds(self, path: Path, account: Key | None = None) -> Path:
        """A .creds file of a new user of `account` (default: the operator's account), signed
        by that account's key."""
        user = Key.new(nkeys.PREFIX_BYTE_USER)
        signer = self.account if account is None else account
        token = jwt(signer, user.public, "dsiem-user",
                    {"type": "user", "version": 2, "pub": {}, "sub": {}, **UNLIMITED})
        path.write_text(
            "-----BEGIN NATS USER JWT-----\n"
            f"{token}\n"
            "------END NATS USER JWT------\n"
            "\n"
            "************************* IMPORTANT *************************\n"
            "NKEY Seed printed below can be used to sign and prove identity.\n"
            "NKEYs are sensitive and should be treated as secrets.\n"
            "\n"
            "-----BEGIN USER NKEY SEED-----\n"
            f"{user.seed.decode()}\n"
            "------END USER NKEY SEED------\n"
            "\n"
            "*************************************************************\n"
        )
        return path
