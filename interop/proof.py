#!/usr/bin/env python3
"""eddsa-jcs-2022 DataIntegrityProof (W3C vc-di-eddsa, FEP-8b32) with independent libraries.

Two independent implementations are used and reported separately:
  * "nacl": written here from the specification with PyNaCl (libsodium Ed25519) and
    rfc8785 (JCS);
  * "apsig": PyPI apsig's ProofSigner / ProofVerifier (cryptography + jcs).

Reads one JSON object on stdin, writes one JSON object on stdout:

    {"requests": [REQUEST, ...]}  ->  {"results": [RESULT, ...]}

REQUEST sign:   {"op": "sign", "document": {...unsigned...},
                 "options": {"type": "DataIntegrityProof", "cryptosuite": "eddsa-jcs-2022",
                             "verificationMethod", "proofPurpose", "created"},
                 "secretKeyMultibase": "z3u2..."}
RESULT:         {"ok": true, "signed": {...}, "apsigSigned": {...}}
REQUEST verify: {"op": "verify", "document": {...signed...}, "publicKeyMultibase": "z6Mk..."}
RESULT:         {"ok": true, "nacl": bool, "apsig": bool, "error": "..."}
"""

import copy
import hashlib
import json
import sys

import base58
import nacl.exceptions
import nacl.signing
import rfc8785

ED25519_PUB = b"\xed\x01"
ED25519_PRIV = b"\x80\x26"


def multikey_bytes(value, prefix):
    if not value.startswith("z"):
        raise ValueError("Multikey must start with 'z' (base58btc)")
    raw = base58.b58decode(value[1:])
    if raw[:2] != prefix or len(raw) != 34:
        raise ValueError("not an Ed25519 Multikey with prefix %s" % prefix.hex())
    return raw[2:]


def hash_data(document, proof_config):
    """SHA-256(JCS(proof config)) || SHA-256(JCS(document)), as vc-di-eddsa 3.3.4."""
    return hashlib.sha256(rfc8785.dumps(proof_config)).digest() + hashlib.sha256(rfc8785.dumps(document)).digest()


def check_options(options):
    if options.get("type") != "DataIntegrityProof" or options.get("cryptosuite") != "eddsa-jcs-2022":
        raise ValueError("proof must be a DataIntegrityProof with cryptosuite eddsa-jcs-2022")


def nacl_sign(document, options, secret):
    check_options(options)
    key = nacl.signing.SigningKey(multikey_bytes(secret, ED25519_PRIV))
    unsecured = {k: v for k, v in document.items() if k != "proof"}
    config = dict(options)
    config.pop("proofValue", None)
    if "@context" in unsecured:
        config["@context"] = unsecured["@context"]
    signature = key.sign(hash_data(unsecured, config)).signature
    proof = dict(config)
    proof["proofValue"] = "z" + base58.b58encode(signature).decode()
    return {**unsecured, "proof": proof}


def nacl_verify(document, public):
    key = nacl.signing.VerifyKey(multikey_bytes(public, ED25519_PUB))
    proof = document.get("proof")
    if not isinstance(proof, dict):
        raise ValueError("no single proof object")
    check_options(proof)
    config = {k: v for k, v in proof.items() if k != "proofValue"}
    value = proof.get("proofValue", "")
    if not value.startswith("z"):
        raise ValueError("proofValue must be base58btc ('z...')")
    signature = base58.b58decode(value[1:])
    unsecured = {k: v for k, v in document.items() if k != "proof"}
    if "@context" in config and config["@context"] != unsecured.get("@context"):
        raise ValueError("proof @context differs from the document's @context")
    key.verify(hash_data(unsecured, config), signature)
    return True


def apsig_sign(document, options, secret):
    from apsig import ProofSigner

    unsecured = {k: v for k, v in copy.deepcopy(document).items() if k != "proof"}
    return ProofSigner(secret).sign(unsecured, copy.deepcopy(options))


def apsig_verify(document, public):
    from apsig import ProofVerifier

    return ProofVerifier(public).verify(copy.deepcopy(document)) is not None


def run(spec):
    if spec["op"] == "sign":
        signed = nacl_sign(spec["document"], spec["options"], spec["secretKeyMultibase"])
        return {"ok": True, "signed": signed, "apsigSigned": apsig_sign(spec["document"], spec["options"], spec["secretKeyMultibase"])}
    if spec["op"] == "verify":
        result = {"ok": True}
        try:
            result["nacl"] = nacl_verify(spec["document"], spec["publicKeyMultibase"])
        except (ValueError, KeyError, TypeError, nacl.exceptions.BadSignatureError) as e:
            result["nacl"] = False
            result["error"] = "%s: %s" % (type(e).__name__, e)
        try:
            result["apsig"] = apsig_verify(spec["document"], spec["publicKeyMultibase"])
        except Exception as e:  # apsig raises various types on malformed input
            result["apsig"] = False
            result.setdefault("error", "apsig %s: %s" % (type(e).__name__, e))
        return result
    return {"ok": False, "error": "unknown op %r" % spec["op"]}


def main():
    request = json.load(sys.stdin)
    results = []
    for spec in request["requests"]:
        try:
            results.append(run(spec))
        except Exception as e:
            results.append({"ok": False, "error": "%s: %s" % (type(e).__name__, e)})
    json.dump({"results": results}, sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    main()
