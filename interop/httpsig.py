#!/usr/bin/env python3
"""RFC 9421 / RFC 9530 with an independent implementation (PyPI http-message-signatures).

Reads one JSON object on stdin, writes one JSON object on stdout:

    {"requests": [REQUEST, ...]}  ->  {"results": [RESULT, ...]}

REQUEST for signing (Passerelle profile: @method, @target-uri and, with a body,
content-digest (sha-256, computed here) and content-type; created, expires, keyid,
alg="ed25519"):
    {"op": "sign", "method", "targetUri", "headers": [[name, value], ...], "body": "<utf-8>",
     "secretKeyMultibase": "z3u2...", "keyId", "created", "expires", "label"}
RESULT: {"ok": true, "headers": [[name, value], ...]}  (the request's headers, with
Content-Digest, Signature-Input and Signature added)

REQUEST for verifying:
    {"op": "verify", "method", "targetUri", "headers", "body", "publicKeyMultibase",
     "keyId", "now", "maxAge", "requireComponents": ["@method", ...], "label": optional}
RESULT: {"ok": true, "label", "parameters": {...}, "coveredComponents": [...],
         "digestChecked": bool} or {"ok": false, "error": "<message>"}

Time: http-message-signatures reads the system clock; "now" given in the request replaces
it so that fixed vectors can be checked (only the created/expires window uses it).
"""

import datetime
import json
import sys

import base58
from cryptography.hazmat.primitives.asymmetric import ed25519
from http_message_signatures import (
    HTTPMessageSigner,
    HTTPMessageVerifier,
    InvalidSignature,
    HTTPMessageSignaturesException,
    MappingKeyResolver,
    algorithms,
)

ED25519_PUB = b"\xed\x01"
ED25519_PRIV = b"\x80\x26"


def multikey_bytes(value, prefix):
    if not value.startswith("z"):
        raise ValueError("Multikey must start with 'z' (base58btc)")
    raw = base58.b58decode(value[1:])
    if raw[:2] != prefix or len(raw) != 34:
        raise ValueError("not an Ed25519 Multikey with prefix %s" % prefix.hex())
    return raw[2:]


def public_key(multikey):
    return ed25519.Ed25519PublicKey.from_public_bytes(multikey_bytes(multikey, ED25519_PUB))


def private_key(multikey):
    return ed25519.Ed25519PrivateKey.from_private_bytes(multikey_bytes(multikey, ED25519_PRIV))


class Headers:
    """Ordered field lines; repeated names allowed; names compared case-insensitively."""

    def __init__(self, pairs):
        self.pairs = [(n, v) for n, v in pairs]

    def items(self):
        return list(self.pairs)

    def __iter__(self):
        return iter([n for n, _ in self.pairs])

    def __contains__(self, name):
        return any(n.lower() == name.lower() for n, _ in self.pairs)

    def __getitem__(self, name):
        values = [v for n, v in self.pairs if n.lower() == name.lower()]
        if not values:
            raise KeyError(name)
        return ", ".join(values)

    def __setitem__(self, name, value):
        self.pairs = [(n, v) for n, v in self.pairs if n.lower() != name.lower()]
        self.pairs.append((name, value))

    def __delitem__(self, name):
        self.pairs = [(n, v) for n, v in self.pairs if n.lower() != name.lower()]


class Request:
    def __init__(self, spec):
        self.method = spec["method"]
        self.url = spec["targetUri"]
        self.headers = Headers(spec["headers"])
        self.body = spec.get("body", "").encode("utf-8")


def utc(ts):
    return datetime.datetime.fromtimestamp(ts, tz=datetime.timezone.utc)


def sign(spec):
    request = Request(spec)
    key_id = spec["keyId"]
    resolver = MappingKeyResolver(public_keys={}, private_keys={key_id: private_key(spec["secretKeyMultibase"])})
    signer = HTTPMessageSigner(signature_algorithm=algorithms.ED25519, key_resolver=resolver)
    components = ["@method", "@target-uri"]
    if request.body:
        components.append("content-type")
    signer.sign(
        request,
        key_id=key_id,
        created=utc(spec["created"]),
        expires=utc(spec["expires"]),
        label=spec.get("label", "sig1"),
        include_alg=True,
        covered_component_ids=components,
        # With a body the library computes Content-Digest (sha-256) and covers it.
        body=request.body if request.body else None,
    )
    return {"ok": True, "headers": [[n, v] for n, v in request.headers.items()]}


class FixedClockVerifier(HTTPMessageVerifier):
    now = None
    future_skew = datetime.timedelta(seconds=60)

    def validate_created_and_expires(self, sig_input, max_age=None):
        # Same checks as the library, with the clock from the request and Passerelle's
        # asymmetric window (max_age in the past, 60 s in the future, no grace on expires).
        now = self.now
        if "created" not in sig_input.params:
            raise InvalidSignature('Signature is missing a required "created" parameter')
        created = self._parse_integer_timestamp(sig_input.params["created"], "created")
        if created > now + self.future_skew:
            raise InvalidSignature('Signature "created" parameter is set to a time in the future')
        if "expires" in sig_input.params:
            if self._parse_integer_timestamp(sig_input.params["expires"], "expires") <= now:
                raise InvalidSignature('Signature "expires" parameter is set to a time in the past')
        if max_age is not None and created + max_age < now:
            raise InvalidSignature("Signature age exceeds maximum allowable age %s" % max_age)


def verify(spec):
    request = Request(spec)
    key_id = spec["keyId"]
    resolver = MappingKeyResolver(public_keys={key_id: public_key(spec["publicKeyMultibase"])}, private_keys={})
    verifier = FixedClockVerifier(signature_algorithm=algorithms.ED25519, key_resolver=resolver)
    verifier.now = utc(spec["now"])
    required = list(spec.get("requireComponents", []))
    if request.body:
        required += ["content-digest", "content-type"]
    kwargs = {}
    if spec.get("label"):
        verifier.allow_label_only_selection = True
        kwargs["expect_label"] = spec["label"]
    try:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            results = verifier.verify(
                request,
                max_age=datetime.timedelta(seconds=spec.get("maxAge", 300)),
                require_components=required,
                body=request.body,
                **kwargs,
            )
    except (InvalidSignature, HTTPMessageSignaturesException) as e:
        return {"ok": False, "error": "%s: %s" % (type(e).__name__, e)}
    r = results[0]
    return {
        "ok": True,
        "label": r.label,
        "parameters": r.parameters,
        "coveredComponents": list(r.covered_components.keys()),
        "digestChecked": r.body is not None,
    }


def main():
    request = json.load(sys.stdin)
    results = []
    for spec in request["requests"]:
        try:
            if spec["op"] == "sign":
                results.append(sign(spec))
            elif spec["op"] == "verify":
                results.append(verify(spec))
            else:
                results.append({"ok": False, "error": "unknown op %r" % spec["op"]})
        except Exception as e:  # reported, not raised: the Rust side asserts on it
            results.append({"ok": False, "error": "%s: %s" % (type(e).__name__, e)})
    json.dump({"results": results}, sys.stdout)


if __name__ == "__main__":
    main()
