#!/usr/bin/python3
"""alembic_fuzz.py DUMP [--rounds N] [--seed S] [--keep DIR]

Random small revision graphs (short ids so that prefixes collide, branch
labels, merges, several bases, depends_on by id or label) written as
projects, and random queries - identifier resolution, upgrades and
downgrades from random valid alembic_version states to random targets,
relative ones included - answered by Alembic 1.8 itself (ScriptDirectory,
RevisionMap, HeadMaintainer) and by dgmigrate (DUMP = a build of
tests/tools/alembic_dump.c, `batch` mode). Both must succeed with the
same revisions in the same order and the same final heads, or both
fail. Prints the differences and "N queries, M differences".
Run it with the Python that has alembic (Debian: /usr/bin/python3).
"""
import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import warnings
from types import SimpleNamespace

from alembic.config import Config
from alembic.runtime.migration import HeadMaintainer, MigrationStep
from alembic.script import ScriptDirectory
from sqlalchemy import Column, MetaData, String, Table

warnings.simplefilter("ignore")


def make_graph(rng):
    n = rng.randint(3, 40)
    ids, revs, labels = [], [], []
    for i in range(n):
        while True:
            rid = "".join(rng.choice("abc0123") for _ in range(rng.randint(4, 6)))
            if rid not in ids and rid not in labels:
                break
        r = rng.random()
        if not ids or r < 0.12:
            down = []
        elif r < 0.30 and len(ids) >= 2:
            down = rng.sample(ids, 2)
        else:
            down = [rng.choice(ids)]
        lab = []
        if rng.random() < 0.25:
            name = "lab%d" % len(labels)
            labels.append(name)
            lab = [name]
        deps = []
        if ids and rng.random() < 0.2:
            cand = rng.choice(ids)
            if cand not in down:
                owner = [x for x in revs if x[0] == cand]
                deps = [owner[0][3][0] if owner and owner[0][3] and rng.random() < 0.5 else cand]
        ids.append(rid)
        revs.append((rid, down, deps, lab))
    return revs


def write_project(path, revs):
    os.makedirs(os.path.join(path, "m", "versions"))
    with open(os.path.join(path, "alembic.ini"), "w") as f:
        f.write("[alembic]\nscript_location = m\n")
    for rid, down, deps, lab in revs:
        def lit(items):
            if not items:
                return "None"
            return repr(items[0]) if len(items) == 1 else repr(tuple(items))
        with open(os.path.join(path, "m", "versions", "%s_r.py" % rid), "w") as f:
            f.write('"""rev %s"""\nrevision = %r\ndown_revision = %s\n'
                    'branch_labels = %s\ndepends_on = %s\n\n'
                    'def upgrade():\n    pass\n\ndef downgrade():\n    pass\n'
                    % (rid, rid, lit(down), lit(lab), lit(deps)))


CTX = SimpleNamespace(impl=SimpleNamespace(_exec=lambda *a, **k: None),
                      _version=Table("alembic_version", MetaData(),
                                     Column("version_num", String(32))),
                      as_sql=True)


def alembic_answer(script, query):
    kind, args = query[0], query[1:]
    try:
        if kind == "resolve":
            # dgmigrate's resolve leaves out None and "base" results
            revs = [r for r in script.revision_map.get_revisions(args[0])
                    if r is not None and not isinstance(r, str)]
            return "ok %s |" % " ".join([r.revision for r in revs]).strip()
        cur = tuple(args[0].split(",")) if args[0] != "base" else ()
        if kind == "upgrade":
            steps = script._upgrade_revs(args[1], cur)
        else:
            steps = script._downgrade_revs(args[1], cur)
        hm = HeadMaintainer(CTX, cur)
        for st in steps:
            hm.update_to_step(st)
        order = [st.revision.revision for st in steps]
        heads = [r.revision for r in script.revision_map.get_revisions(tuple(hm.heads))]
        heads.sort(key=[r.revision for r in script.walk_revisions()].index)
        return "ok %s | %s" % (" ".join(order), " ".join(heads))
    except Exception as e:            # what alembic reports, or where it crashes
        return "error %s: %s" % (type(e).__name__, e)


def norm(answer, index):
    """heads in load order on both sides; whitespace tolerant."""
    if not answer.startswith("ok"):
        return "error"
    steps, _, heads = answer[2:].partition("|")
    return (steps.split(), sorted(heads.split(), key=index))


def random_state(script, rng, ids):
    """A valid alembic_version: the heads after a real upgrade."""
    cur = ()
    for t in rng.sample(ids, min(len(ids), rng.randint(0, 3))):
        try:
            steps = script._upgrade_revs(t, cur)
            hm = HeadMaintainer(CTX, cur)
            for st in steps:
                hm.update_to_step(st)
            cur = tuple(sorted(hm.heads))
        except Exception:
            pass
    return cur


def random_target(rng, ids, labels):
    r = rng.choice(ids)
    lab = rng.choice(labels) if labels else "nolabel"
    forms = [
        "heads", "head", "base", r, r[:rng.randint(1, len(r))], lab, lab + "@head",
        lab + "@heads", lab + "@base", "%s@%s" % (lab, r), "+%d" % rng.randint(1, 3),
        "-%d" % rng.randint(1, 3), "%s+%d" % (r, rng.randint(1, 2)),
        "%s-%d" % (r, rng.randint(1, 2)), "%s@+1" % lab, "%s@-1" % lab, "head-1",
        "heads-1", "nosuch",
    ]
    return rng.choice(forms)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dump")
    ap.add_argument("--rounds", type=int, default=50)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--queries", type=int, default=40)
    ap.add_argument("--keep")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    total = diffs = 0
    for rnd in range(args.rounds):
        revs = make_graph(rng)
        tmp = tempfile.mkdtemp(prefix="dgm-fuzz-")
        try:
            write_project(tmp, revs)
            cwd = os.getcwd()
            os.chdir(tmp)
            try:
                script = ScriptDirectory.from_config(Config("alembic.ini"))
                order = [r.revision for r in script.walk_revisions()]
            except Exception as e:
                os.chdir(cwd)
                p = subprocess.run([args.dump, tmp, "heads"], capture_output=True, text=True)
                total += 1
                if p.returncode == 0:
                    diffs += 1
                    print("round %d: alembic cannot load (%s), dgmigrate can" % (rnd, e))
                continue
            ids = [r[0] for r in revs]
            labels = [r[3][0] for r in revs if r[3]]
            queries = []
            for _ in range(args.queries):
                kind = rng.choice(["resolve", "upgrade", "downgrade", "upgrade", "downgrade"])
                target = random_target(rng, ids, labels)
                if kind == "resolve":
                    queries.append(("resolve", target))
                else:
                    cur = random_state(script, rng, ids)
                    queries.append((kind, ",".join(cur) or "base", target))
            expected = [alembic_answer(script, q) for q in queries]
            os.chdir(cwd)
            p = subprocess.run([args.dump, tmp, "batch"], capture_output=True, text=True,
                               input="".join(" ".join(q) + "\n" for q in queries))
            got = p.stdout.splitlines()
            if p.returncode != 0 or len(got) != len(queries):
                print("round %d: dgmigrate failed: %s" % (rnd, p.stderr.strip()[-300:]))
                diffs += 1
                continue
            index = lambda x: order.index(x) if x in order else -1
            for q, a, b in zip(queries, expected, got):
                total += 1
                if norm(a, index) != norm(b, index):
                    diffs += 1
                    print("round %d: %s\n  alembic:   %s\n  dgmigrate: %s" % (rnd, " ".join(q), a, b))
                    if args.keep:
                        dest = os.path.join(args.keep, "round%d" % rnd)
                        if not os.path.exists(dest):
                            shutil.copytree(tmp, dest)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    print("%d queries, %d differences" % (total, diffs))
    sys.exit(1 if diffs else 0)


if __name__ == "__main__":
    main()
