#!/usr/bin/env python3
"""Writes the seed corpora fuzz/corpus/<target>/ from spec/examples, spec/vectors and
hand-written edge cases. Deterministic: rerun after changing the spec files."""
import json
import pathlib
import shutil

ROOT = pathlib.Path(__file__).resolve().parent.parent
SPEC = ROOT / "spec"
OUT = ROOT / "fuzz" / "corpus"
CONTEXT = [
    "https://www.w3.org/ns/activitystreams",
    "https://w3id.org/security/data-integrity/v2",
    "https://w3id.org/passerelle/v1",
]


def vectors(path):
    data = json.loads((SPEC / "vectors" / path).read_text())
    for group in data["testGroups"]:
        for test in group["tests"]:
            yield group, test


def compact(value):
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def write(target, name, data):
    d = OUT / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data if isinstance(data, bytes) else data.encode())


def main():
    if OUT.exists():
        shutil.rmtree(OUT)

    # canonical: the JCS vectors' inputs and edge cases.
    for _, t in vectors("jcs/jcs-passerelle.json"):
        text = t["input"].get("text")
        if text is not None:
            write("canonical", f"jcs-{t['tcId']}.json", text)
    for i, edge in enumerate([
        '{"a":1,"a":2}', "[1e400]", "9007199254740993", '"\\ud800"', "[" * 40 + "]" * 40,
        '{"\\u00e9":"é","e\\u0301":[-0,1E30,0.000001,4.50,1e-7]}', "\ufeff{}", "{} x",
        '{"b":[],"a":{},"":null,"\\u0000":true}',
    ]):
        write("canonical", f"edge-{i}.json", edge)

    # activity: the spec examples, as objects and wrapped in a Create; the proof vectors.
    examples = sorted((SPEC / "examples").glob("*.json"))
    for path in examples:
        write("activity", path.name, path.read_bytes())
    for path in examples[:3]:
        posting = json.loads(path.read_text())
        posting.pop("@context", None)
        actor = posting.get("attributedTo", "https://mairie-a.example/actor")
        create = {
            "@context": CONTEXT,
            "id": actor.rsplit("/", 1)[0] + "/activities/0190c5d2-3b4a-7c8d-9e0f-123456789abc",
            "type": "Create",
            "actor": actor,
            "object": posting,
            "to": ["https://www.w3.org/ns/activitystreams#Public"],
            "published": "2026-11-23T10:00:00Z",
        }
        write("activity", "create-" + path.name, compact(create))
    for path in sorted((SPEC / "examples" / "invalid").glob("posting-*.json"))[:4]:
        write("activity", "invalid-" + path.name, path.read_bytes())
    follow = {
        "@context": CONTEXT,
        "id": "https://emploi.grenoble.fr/activities/0190c5d2-3b4a-7c8d-9e0f-123456789abc",
        "type": "Follow",
        "actor": "https://emploi.grenoble.fr/actor",
        "object": "https://www.isere.fr/actor",
        "to": ["https://www.isere.fr/actor"],
        "published": "2026-11-23T10:00:00Z",
    }
    write("activity", "follow.json", compact(follow))
    write("activity", "undo-follow.json", compact({**follow, "type": "Undo", "object": follow}))
    write("activity", "unknown-type.json", '{"type":"Note"}')

    # httpsig: the Passerelle profile vectors as request text.
    for _, t in vectors("httpsig/passerelle-profile.json"):
        i = t["input"]
        head = [str(i["now"]), i["method"], i["targetUri"]] + [f"{n}: {v}" for n, v in i["headers"]]
        write("httpsig", f"vector-{t['tcId']}.txt", "\n".join(head) + "\n\n" + i["body"])

    # content_digest: the RFC 9530 vectors and malformed fields.
    for _, t in vectors("digest/content-digest.json"):
        write("content_digest", f"vector-{t['tcId']}.txt", t["input"]["fieldValue"] + "\n" + t["input"]["body"])
    for i, edge in enumerate(["sha-256=(:AA==:)\nx", "sha-256=:AA==:;q=1\n", "sha-512=?1\nbody", ",\n"]):
        write("content_digest", f"edge-{i}.txt", edge)

    # multikey: public and secret keys of the vectors, and near misses.
    keys = set()
    for group, _ in vectors("httpsig/passerelle-profile.json"):
        keys.update([group["key"]["publicKeyMultibase"], group["key"]["secretKeyMultibase"]])
    for group, _ in vectors("eddsa-jcs-2022/eddsa-jcs-2022-passerelle.json"):
        keys.update([group["key"]["publicKeyMultibase"], group["key"]["secretKeyMultibase"]])
    for i, k in enumerate(sorted(keys)):
        write("multikey", f"key-{i}.txt", k)
    for i, edge in enumerate(["z", "z6Mk", "f ed01", "z1111111111111111111111111111111111", "zQ3s"]):
        write("multikey", f"edge-{i}.txt", edge)

    # proof: every eddsa-jcs-2022 vector document (valid and invalid).
    docs = []
    for _, t in vectors("eddsa-jcs-2022/eddsa-jcs-2022-passerelle.json"):
        docs.append(t["input"]["document"])
        write("proof", f"vector-{t['tcId']}.json", compact(t["input"]["document"]))

    # outbox_page: pages of signed activities and postings.
    page = {
        "@context": CONTEXT,
        "id": "https://rh.mairie-exemple.example/outbox?cursor=42",
        "type": "OrderedCollectionPage",
        "partOf": "https://rh.mairie-exemple.example/outbox",
        "next": "https://rh.mairie-exemple.example/outbox?cursor=43",
        "orderedItems": docs[:2],
    }
    write("outbox_page", "page-signed.json", compact(page))
    write("outbox_page", "page-postings.json", compact({
        **page, "orderedItems": [json.loads(p.read_text()) for p in examples[:2]]}))
    write("outbox_page", "page-empty.json", compact({**page, "orderedItems": [], "items": []}))
    write("outbox_page", "collection.json", compact({
        "@context": CONTEXT, "id": "https://rh.mairie-exemple.example/outbox",
        "type": "OrderedCollection", "totalItems": 2,
        "first": "https://rh.mairie-exemple.example/outbox?cursor=0"}))

    # discovery: WebFinger JRD and NodeInfo documents.
    write("discovery", "jrd.json", compact({
        "subject": "acct:grenoble@emploi.grenoble.fr",
        "aliases": ["https://emploi.grenoble.fr/actor"],
        "links": [{"rel": "self", "type": "application/activity+json",
                   "href": "https://emploi.grenoble.fr/actor"},
                  {"rel": "http://webfinger.net/rel/profile-page", "type": "text/html",
                   "href": "https://emploi.grenoble.fr/", "titles": {"fr": "Grenoble"},
                   "properties": {"http://example.com/p": None}}]}))
    write("discovery", "nodeinfo-links.json", compact({"links": [{
        "rel": "http://nodeinfo.diaspora.software/ns/schema/2.1",
        "href": "https://emploi.grenoble.fr/nodeinfo/2.1"}]}))
    write("discovery", "nodeinfo.json", compact({
        "version": "2.1",
        "software": {"name": "passerelle", "version": "0.1.0",
                     "repository": "https://example.invalid/passerelle"},
        "protocols": ["activitypub"], "services": {"inbound": [], "outbound": []},
        "openRegistrations": False,
        "usage": {"users": {"total": 1, "activeMonth": 1, "activeHalfyear": 1}, "localPosts": 3},
        "metadata": {"passerelleProtocolVersion": "1.0"}}))


if __name__ == "__main__":
    main()
