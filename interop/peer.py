#!/usr/bin/env python3
"""A minimal Passerelle peer written with independent libraries (the standard library's
HTTP server and client, `http-message-signatures` for RFC 9421 and RFC 9530, PyNaCl with
`rfc8785` and `apsig` for eddsa-jcs-2022 — through httpsig.py and proof.py beside it).

It serves an actor document, WebFinger and an (empty) outbox, receives signed activities
on its inbox and verifies them (transport signature, Content-Digest, every proof) with the
sender's keys fetched from the sender's actor, answers a Follow with a signed Accept, and,
on command, sends a signed Follow or a signed Create of a posting to a node.

    python peer.py --port P --secret z3u2... --template spec/examples/organization.json \
        --posting spec/examples/posting-vacancy.json

Control (loopback only, for the test driving it):
    POST /control/follow   {"node": "http://127.0.0.1:N/actor"}      -> {"status": 202, ...}
    POST /control/create   {"node": "http://127.0.0.1:N/actor"}      -> {"status": 202, "posting": id}
    GET  /control/status                                               -> {"received": [...]}

Every received activity is recorded with the verdicts of both proof implementations and
of the RFC 9421 library.
"""

import argparse
import copy
import datetime
import json
import os
import sys
import threading
import time
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import httpsig  # noqa: E402
import proof  # noqa: E402
import nacl.signing  # noqa: E402
import base58  # noqa: E402

CONTEXT = [
    "https://www.w3.org/ns/activitystreams",
    "https://w3id.org/security/data-integrity/v2",
    "https://w3id.org/passerelle/v1",
]
ACTIVITY_JSON = "application/activity+json"


def uuid7():
    """A UUIDv7 (RFC 9562): 48-bit Unix milliseconds, version 7, variant 10, random."""
    ms = int(time.time() * 1000)
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms << 80) | (0x7 << 76) | ((rand >> 68) & 0xFFF) << 64 | (0b10 << 62) | (rand & ((1 << 62) - 1))
    return str(uuid.UUID(int=value))


def now_iso():
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


class Peer:
    def __init__(self, base, secret, template, posting):
        self.base = base
        self.actor_id = base + "/actor"
        self.secret = secret
        seed = proof.multikey_bytes(secret, proof.ED25519_PRIV)
        public = nacl.signing.SigningKey(seed).verify_key.encode()
        self.public = "z" + base58.b58encode(proof.ED25519_PUB + public).decode()
        self.key_id = self.actor_id + "#key-1"
        self.template = template
        self.posting_template = posting
        self.received = []
        self.lock = threading.Lock()

    # ---- documents ----
    def actor(self):
        doc = copy.deepcopy(self.template)
        doc["id"] = self.actor_id
        doc["preferredUsername"] = "peer"
        doc["name"] = "Pair indépendant (test d'interopérabilité)"
        doc["inbox"] = self.base + "/inbox"
        doc["outbox"] = self.base + "/outbox"
        doc["followers"] = self.base + "/followers"
        doc["following"] = self.base + "/following"
        doc["endpoints"] = {"sharedInbox": self.base + "/inbox"}
        doc["assertionMethod"] = [
            {"id": self.key_id, "type": "Multikey", "controller": self.actor_id, "publicKeyMultibase": self.public}
        ]
        doc["collectivite"] = {"siren": "253800825", "kind": "sdis", "versant": "fpt"}
        doc.pop("updated", None)
        return doc

    def sign_doc(self, document):
        options = {
            "type": "DataIntegrityProof",
            "cryptosuite": "eddsa-jcs-2022",
            "verificationMethod": self.key_id,
            "proofPurpose": "assertionMethod",
            "created": now_iso(),
        }
        return proof.nacl_sign(document, options, self.secret)

    def activity(self, kind, obj, to):
        return self.sign_doc(
            {
                "@context": CONTEXT,
                "id": "%s/activities/%s" % (self.base, uuid7()),
                "type": kind,
                "actor": self.actor_id,
                "object": obj,
                "to": to,
                "published": now_iso(),
            }
        )

    def posting(self):
        p = copy.deepcopy(self.posting_template)
        for k in ("proof", "updated"):
            p.pop(k, None)
        if isinstance(p.get("employer"), dict):
            p["employer"]["name"] = "Pair indépendant (test d'interopérabilité)"
            p["employer"].pop("siret", None)
        p["@context"] = CONTEXT
        p["id"] = "%s/postings/%s" % (self.base, uuid7())
        p["attributedTo"] = self.actor_id
        p["version"] = 1
        p["published"] = now_iso()
        p["status"] = "published"
        p["visibility"] = "federation"
        p["to"] = [self.base + "/followers"]
        return self.sign_doc(p)

    # ---- HTTP client ----
    def fetch_json(self, url):
        req = urllib.request.Request(url, headers={"Accept": ACTIVITY_JSON})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def post(self, inbox, activity):
        body = json.dumps(activity, ensure_ascii=False).encode("utf-8")
        created = int(time.time())
        signed = httpsig.sign(
            {
                "method": "POST",
                "targetUri": inbox,
                "headers": [["Content-Type", ACTIVITY_JSON]],
                "body": body.decode("utf-8"),
                "secretKeyMultibase": self.secret,
                "keyId": self.key_id,
                "created": created,
                "expires": created + 300,
                "label": "sig1",
            }
        )
        req = urllib.request.Request(inbox, data=body, method="POST")
        for name, value in signed["headers"]:
            req.add_header(name, value)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    # ---- verification of what arrives ----
    def verify(self, method, path, headers, body):
        record = {"path": path}
        try:
            activity = json.loads(body)
        except ValueError as e:
            return 400, dict(record, error="json: %s" % e)
        record["type"] = activity.get("type")
        record["id"] = activity.get("id")
        record["actor"] = activity.get("actor")
        sig_input = dict((n.lower(), v) for n, v in headers).get("signature-input", "")
        key_id = sig_input.split('keyid="', 1)[1].split('"', 1)[0] if 'keyid="' in sig_input else ""
        actor_url = key_id.split("#", 1)[0]
        try:
            actor = self.fetch_json(actor_url)
        except Exception as e:
            return 503, dict(record, error="cannot fetch %s: %s" % (actor_url, e))
        keys = {k["id"]: k["publicKeyMultibase"] for k in actor.get("assertionMethod", [])}
        if key_id not in keys or actor_url != activity.get("actor"):
            return 401, dict(record, error="key %s is not the actor's" % key_id)
        transport = httpsig.verify(
            {
                "method": method,
                "targetUri": self.base + path,
                "headers": [[n, v] for n, v in headers],
                "body": body.decode("utf-8"),
                "publicKeyMultibase": keys[key_id],
                "keyId": key_id,
                "now": int(time.time()),
                "maxAge": 300,
                "requireComponents": ["@method", "@target-uri"],
                "label": "sig1",
            }
        )
        record["transport"] = transport.get("ok") is True and transport.get("digestChecked") is True
        record["transportError"] = transport.get("error")
        vm = (activity.get("proof") or {}).get("verificationMethod")
        record["proof"] = proof.run({"op": "verify", "document": activity, "publicKeyMultibase": keys.get(vm, "")})
        obj = activity.get("object")
        if isinstance(obj, dict) and isinstance(obj.get("proof"), dict):
            ovm = obj["proof"].get("verificationMethod", "")
            okeys = keys
            if ovm.split("#", 1)[0] != actor_url:
                owner = self.fetch_json(ovm.split("#", 1)[0])
                okeys = {k["id"]: k["publicKeyMultibase"] for k in owner.get("assertionMethod", [])}
            record["objectProof"] = proof.run({"op": "verify", "document": obj, "publicKeyMultibase": okeys.get(ovm, "")})
        if not record["transport"]:
            return 401, record
        return 202, record

    def answer_follow(self, follow):
        actor = self.fetch_json(follow["actor"])
        accept = self.activity("Accept", follow, [follow["actor"]])
        status, text = self.post(actor["inbox"], accept)
        with self.lock:
            self.received.append({"sentAccept": status, "body": text})


def handler_for(peer):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def send_json(self, status, value, ctype="application/json"):
            body = json.dumps(value, ensure_ascii=False).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            if self.path == "/actor":
                return self.send_json(200, peer.actor(), ACTIVITY_JSON)
            if self.path.startswith("/.well-known/webfinger"):
                return self.send_json(
                    200,
                    {
                        "subject": "acct:peer@" + peer.base.split("://", 1)[1],
                        "links": [{"rel": "self", "type": ACTIVITY_JSON, "href": peer.actor_id}],
                    },
                    "application/jrd+json",
                )
            if self.path == "/outbox":
                return self.send_json(
                    200,
                    {"@context": CONTEXT, "id": peer.base + "/outbox", "type": "OrderedCollection",
                     "totalItems": 0, "first": peer.base + "/outbox?after=0"},
                    ACTIVITY_JSON,
                )
            if self.path.startswith("/outbox?after="):
                return self.send_json(
                    200,
                    {"@context": CONTEXT, "id": peer.base + self.path, "type": "OrderedCollectionPage",
                     "partOf": peer.base + "/outbox", "orderedItems": [], "next": peer.base + self.path},
                    ACTIVITY_JSON,
                )
            if self.path == "/control/status":
                with peer.lock:
                    return self.send_json(200, {"received": list(peer.received)})
            self.send_json(404, {"code": "not_found"})

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            if self.path == "/inbox":
                status, record = peer.verify("POST", self.path, list(self.headers.items()), body)
                with peer.lock:
                    peer.received.append(record)
                if status == 202 and record.get("type") == "Follow":
                    threading.Thread(target=peer.answer_follow, args=(json.loads(body),), daemon=True).start()
                return self.send_json(status, {} if status == 202 else {"code": "refused", "detail": record})
            if self.path.startswith("/control/"):
                command = json.loads(body or b"{}")
                node = peer.fetch_json(command["node"])
                if self.path == "/control/follow":
                    follow = peer.activity("Follow", node["id"], [node["id"]])
                    status, text = peer.post(node["inbox"], follow)
                    return self.send_json(200, {"status": status, "body": text, "activity": follow["id"]})
                if self.path == "/control/create":
                    posting = peer.posting()
                    create = peer.activity("Create", posting, [peer.base + "/followers"])
                    status, text = peer.post(node["inbox"], create)
                    return self.send_json(200, {"status": status, "body": text, "posting": posting["id"]})
            self.send_json(404, {"code": "not_found"})

    return Handler


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--template", required=True)
    parser.add_argument("--posting", required=True)
    args = parser.parse_args()
    with open(args.template) as f:
        template = json.load(f)
    with open(args.posting) as f:
        posting = json.load(f)
    base = "http://127.0.0.1:%d" % args.port
    peer = Peer(base, args.secret, template, posting)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), handler_for(peer))
    print("ready", base, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
