#!/usr/bin/python3
"""make-seeds.py: (re)write the seed corpora of tests/fuzz/corpus/ from the
fixtures (fixtures/alembic, fixtures/app, plans/) and a few hand-made
manifests. Run from anywhere; the corpus is committed, so run it only
when the fixtures change."""
import glob
import json
import os
import shutil

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CORPUS = os.path.join(ROOT, "tests", "fuzz", "corpus")


def out(name, fname, data):
    d = os.path.join(CORPUS, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, fname), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def read(path):
    with open(path, "rb") as f:
        return f.read()


def slug(path):
    return os.path.relpath(path, ROOT).replace("/", "_")


def revfiles():
    for p in sorted(glob.glob(os.path.join(ROOT, "fixtures", "**", "*.py"), recursive=True)):
        if "/versions/" in p:
            out("revfile", slug(p), read(p))


def inis():
    for p in sorted(glob.glob(os.path.join(ROOT, "fixtures", "**", "*.ini"), recursive=True)):
        out("ini", slug(p), read(p))
        out("config", slug(p), read(p))
    extra = ("[DEFAULT]\nshared = %(here)s/shared\n[alembic]\nscript_location = %(here)s/db\n"
             "version_locations = %(here)s/db/versions %(shared)s/versions\n"
             "version_path_separator = space\nrecursive_version_locations = true\n"
             "sourceless = true\nmulti = one\n    two\n\n    three\nb=x%%y\n")
    out("ini", "interpolation.ini", extra)
    out("config", "separators.ini", extra)


QUERIES = """=== ?
up > heads
up > +1
down > base
history - heads
resolve heads
"""


def project(name, root, ini, overlays=()):
    """Pack ROOT's files (ini first) and the overlays' into one input."""
    files = {}
    for r in (root,) + tuple(overlays):
        for p in glob.glob(os.path.join(r, "**", "*"), recursive=True):
            rel = os.path.relpath(p, r)
            if os.path.isfile(p) and (rel.endswith(".py") or rel.endswith(".ini")):
                files[rel] = read(p)
    parts = [b"=== " + ini.encode() + b"\n" + files.pop(ini)]
    for rel in sorted(files):
        parts.append(b"=== " + rel.encode() + b"\n" + files[rel])
    out("graph", name, b"".join(parts) + QUERIES.encode())


def graphs():
    fx = os.path.join(ROOT, "fixtures")
    project("basic", os.path.join(fx, "alembic", "basic"), "alembic.ini")
    project("multi", os.path.join(fx, "alembic", "multi"), "app/alembic.ini")
    project("recursive", os.path.join(fx, "alembic", "recursive"), "alembic.ini")
    for ini in sorted(glob.glob(os.path.join(fx, "alembic", "bad", "*.ini"))):
        project("bad_" + os.path.basename(ini)[:-4], os.path.join(fx, "alembic", "bad"),
                os.path.basename(ini))
    app = os.path.join(fx, "app")
    project("app_base", os.path.join(app, "base"), "alembic.ini")
    project("app_v1.6", os.path.join(app, "base"), "alembic.ini", (os.path.join(app, "v1.6"),))
    # a small graph with labels, a merge and depends_on, and relative queries
    out("graph", "labels", """=== alembic.ini
[alembic]
script_location = m
=== m/versions/a.py
revision = 'a1'
down_revision = None
branch_labels = ('main',)
=== m/versions/b.py
revision = 'b2'
down_revision = 'a1'
=== m/versions/c.py
revision = 'c3'
down_revision = 'a1'
branch_labels = ['feature']
=== m/versions/d.py
revision: str = 'd4'
down_revision = ('b2', 'c3')
depends_on = 'feature'
=== m/versions/e.py
revision = 'e5'
down_revision = None
branch_labels = 'other'
depends_on = ['b2']
=== ?
up a1 > heads
up a1 > main@+2
up b2 c3 > +1
down d4 e5 > -1
down d4 e5 > feature@base
down d4 e5 > d4-2
history a1 d4
resolve main@head
resolve -1
resolve c
""")


def plans():
    for p in sorted(glob.glob(os.path.join(ROOT, "plans", "*.yaml"))):
        out("plan", slug(p), read(p))
    out("plan", "minimal.yaml", """version: 1
release: {name: r, repository: /srv/app, tag: v1}
database: {url: "${DATABASE_URL}"}
alembic: {config: alembic.ini, target: heads}
snapshot: {directory: /var/backups/dgm}
model_store: {path: "${ML_MODEL_STORAGE_PATH}"}
""")


def manifests():
    sha = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    entries = [
        {"path": "models", "type": "dir", "mode": "0755", "mtime": 1700000000, "size": 0},
        {"path": "models/a.bin", "type": "file", "mode": "0644", "mtime": 1700000000,
         "size": 12, "sha256": sha},
        {"path_hex": "6d6f64656c732fff", "type": "file", "mode": "0600", "mtime": 1700000001,
         "size": 3, "sha256": sha},
        {"path": "models/latest", "type": "symlink", "mode": "0777", "mtime": 1700000002,
         "size": 5, "sha256": sha},
    ]
    m = {"format": "dgmigrate-archive-manifest", "version": 1, "created": 1700000003,
         "archive_sha256": sha, "archive_bytes": 4096, "entry_count": len(entries),
         "content_bytes": 15, "store": "/srv/models",
         "extras": [{"index": 0, "path": "/etc/app/extra.conf"}], "entries": entries}
    out("manifest", "four-entries.json", json.dumps(m, indent=0))
    m2 = dict(m, entries=[], entry_count=0, content_bytes=0, extras=[],
              store_hex="2f7372762fff")
    del m2["store"]
    out("manifest", "empty.json", json.dumps(m2))

    snap = {"format_version": 1, "id": "20261129T064955Z-3f2a", "kind": "pre-apply",
            "release": "FastAPI v1.6", "tag": "v1.6", "commit": "0" * 40,
            "alembic_revisions": ["c47d0e9a2f13", "5e9f3b7a1c62"], "created": 1764398995,
            "write_counters": {"public.users": 12},
            "database": {"name": "app", "server_version": "15.5", "pg_dump_version": "15.5",
                         "wal_lsn": "0/1A2B3C4", "format": "directory", "toc_entries": 42,
                         "bytes": 123456, "files_sha256": sha, "copy": "app_dgm_snap_x"},
            "model_store": {"path": "/srv/models", "archive_sha256": sha,
                            "archive_bytes": 4096, "content_bytes": 15, "entries": 4,
                            "linked_from": "20261128T000000Z-0000"},
            "timings_ms": {"dump": 10, "archive": 20, "verify": 5, "total": 40}}
    out("catalog", "pre-apply.json", json.dumps(snap, indent=1))
    snap2 = dict(snap, kind="pre-rollback", write_counters={})
    snap2["database"] = dict(snap["database"], format="copy")
    del snap2["model_store"]
    out("catalog", "copy-only.json", json.dumps(snap2))


if __name__ == "__main__":
    shutil.rmtree(CORPUS, ignore_errors=True)
    revfiles()
    inis()
    graphs()
    plans()
    manifests()
    for d in sorted(os.listdir(CORPUS)):
        print(d, len(os.listdir(os.path.join(CORPUS, d))))
