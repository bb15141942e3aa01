#!/usr/bin/env bash
# alembic_equiv.sh PROJECT_DIR [CHECKS] - compare dgmigrate's Alembic port
# (src/alembic/, through tests/tools/alembic_dump.c) with the real alembic
# on one project: heads, history (order, parents, labels, messages), and
# the steps and final alembic_version rows of upgrades and downgrades -
# `alembic upgrade A:B --sql` / `downgrade A:B --sql` read from the
# "-- Running ..." comments and the version table statements, and, for
# starting states with several heads (which the command line cannot
# express offline), Alembic's EnvironmentContext called from Python.
# CHECKS (default 25) is the number of random ranges tried. Prints one
# line a difference and ends with "N checks, M differences"; exit 1 on
# any difference.
#
# Environment: DUMP = an alembic_dump binary (built into a temporary
# folder when unset), ALEMBIC = the alembic command (default alembic),
# DUMP_FLAGS = extra flags for alembic_dump (e.g. --sorted to compare
# with an Alembic >= 1.10 that sorts file names).
#
# The lead can build the helper once with:
#   cc -std=c11 -D_GNU_SOURCE -Iinclude -o build/alembic_dump \
#      tests/tools/alembic_dump.c src/alembic/*.c src/common/buf.c \
#      src/common/error.c src/common/log.c src/common/tree_fs.c
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PROJECT=$(cd "${1:?usage: alembic_equiv.sh PROJECT_DIR [CHECKS]}" && pwd)
CHECKS=${2:-25}

if [[ -z ${DUMP:-} ]]; then
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	DUMP=$tmp/alembic_dump
	cc -std=c11 -O2 -D_GNU_SOURCE -I"$ROOT/include" -o "$DUMP" \
		"$ROOT/tests/tools/alembic_dump.c" "$ROOT"/src/alembic/*.c \
		"$ROOT/src/common/buf.c" "$ROOT/src/common/error.c" \
		"$ROOT/src/common/log.c" "$ROOT/src/common/tree_fs.c"
fi
export DUMP PROJECT CHECKS
export ALEMBIC=${ALEMBIC:-alembic}
export DUMP_FLAGS=${DUMP_FLAGS:-}
# The Python that runs alembic (its shebang), which can import it.
PY=$(head -1 "$(command -v "${ALEMBIC%% *}")" | sed -n 's/^#! *//p' | awk '{print $1}')
[[ -x ${PY:-} ]] || PY=python3

exec "$PY" - <<'PY'
import io
import os
import random
import re
import subprocess
import sys

DUMP = os.environ["DUMP"]
PROJECT = os.environ["PROJECT"]
ALEMBIC = os.environ["ALEMBIC"].split()
DUMP_FLAGS = os.environ["DUMP_FLAGS"].split()
checks = diffs = 0


def run(argv):
    p = subprocess.run(argv, cwd=PROJECT, capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


def dump(*args):
    return run([DUMP] + DUMP_FLAGS + [PROJECT] + list(args))


def alembic(*args):
    return run(ALEMBIC + list(args))


def report(name, ok, detail=""):
    global checks, diffs
    checks += 1
    if not ok:
        diffs += 1
        print("DIFF %s%s" % (name, ("\n" + detail) if detail else ""))


def last_line(text):
    lines = [l for l in text.strip().splitlines() if l.strip()]
    return lines[-1] if lines else ""


# ---- SQL output: steps and the version table ------------------------------

VERSION_STMT = [
    (re.compile(r"^INSERT INTO alembic_version \(version_num\) VALUES \('([^']*)'\)"), "ins"),
    (re.compile(r"^UPDATE alembic_version SET version_num='([^']*)' WHERE "
                r"alembic_version.version_num = '([^']*)'"), "upd"),
    (re.compile(r"^DELETE FROM alembic_version WHERE alembic_version.version_num = '([^']*)'"),
     "del"),
]


def parse_sql(text, start):
    steps, heads = [], set(start)
    for line in text.splitlines():
        if line.startswith("-- Running "):
            steps.append(line[len("-- Running "):].rstrip())
            continue
        for rx, kind in VERSION_STMT:
            m = rx.match(line)
            if not m:
                continue
            if kind == "ins":
                heads.add(m.group(1))
            elif kind == "upd":
                heads.discard(m.group(2))
                heads.add(m.group(1))
            else:
                heads.discard(m.group(1))
    return steps, heads


def parse_dump_steps(text):
    steps, heads = [], set()
    for line in text.splitlines():
        if line.startswith("heads:"):
            heads = set(line.split()[1:])
        elif line:
            steps.append(line.rstrip())
    return steps, heads


def compare_run(name, real, mine, start):
    (rc_a, out_a, err_a), (rc_b, out_b, err_b) = real, mine
    if rc_a != 0 or rc_b != 0:
        report(name, (rc_a != 0) == (rc_b != 0),
               "  alembic [%d]: %s\n  dgmigrate [%d]: %s"
               % (rc_a, last_line(err_a), rc_b, last_line(err_b)))
        return
    steps_a, heads_a = parse_sql(out_a, start)
    steps_b, heads_b = parse_dump_steps(out_b)
    detail = ""
    if steps_a != steps_b:
        for i, (x, y) in enumerate(zip(steps_a + [""] * 99999, steps_b)):
            if x != y:
                detail = "  step %d: alembic '%s', dgmigrate '%s'" % (i, x, y)
                break
        if not detail:
            detail = "  %d steps vs %d" % (len(steps_a), len(steps_b))
    elif heads_a != heads_b:
        detail = "  final heads: alembic %s, dgmigrate %s" % (sorted(heads_a), sorted(heads_b))
    report(name, not detail, detail)


def cli(direction, start, target):
    frm = start or "base"
    return compare_run("%s %s:%s" % (direction, frm, target),
                       alembic(direction, "%s:%s" % (frm, target), "--sql"),
                       dump(direction, frm, target), [start] if start else [])


# ---- multi-head starting states through Alembic's Python API --------------

API = r'''
import io, sys
from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.script import ScriptDirectory
direction, dest = sys.argv[1], sys.argv[2]
start = tuple(sys.argv[3].split(",")) if sys.argv[3] != "base" else ()
buf = io.StringIO()
cfg = Config("alembic.ini", output_buffer=buf)
script = ScriptDirectory.from_config(cfg)
def fn(rev, context):
    if direction == "upgrade":
        return script._upgrade_revs(dest, rev)
    return script._downgrade_revs(dest, rev)
try:
    with EnvironmentContext(cfg, script, fn=fn, as_sql=True, starting_rev=start,
                            destination_rev=dest):
        script.run_env()
except Exception as e:
    print("FAILED: %s: %s" % (type(e).__name__, e), file=sys.stderr)
    sys.exit(1)
sys.stdout.write(buf.getvalue())
'''


def api(direction, start, target):
    frm = ",".join(start) if start else "base"
    compare_run("api %s %s:%s" % (direction, frm, target),
                run([sys.executable, "-c", API, direction, target, frm]),
                dump(direction, frm, target), list(start))


def api_heads(direction, start, target):
    """alembic_version after a run of the real alembic, or None."""
    frm = ",".join(start) if start else "base"
    rc, out, err = run([sys.executable, "-c", API, direction, target, frm])
    return None if rc else sorted(parse_sql(out, start)[1])


# ---- the checks -----------------------------------------------------------

def main():
    rc, out, err = dump("graph")
    if rc != 0:
        print("dgmigrate cannot load the project: %s" % last_line(err))
        sys.exit(1)
    graph = {}
    for line in out.splitlines():
        rid, down, deps, labels, doc = line.split("|", 4)
        graph[rid] = (down.split(",") if down else [], deps, set(labels.split(",")) - {""}, doc)
    ids = list(graph)

    rc_a, heads_a, err_a = alembic("heads")
    rc_b, heads_b, err_b = dump("heads")
    heads = [l.split()[0] for l in heads_a.splitlines() if l.strip()]
    report("heads", rc_a == 0 and heads == heads_b.split(),
           "  alembic %s\n  dgmigrate %s" % (heads, heads_b.split()))

    rc_a, hist, err_a = alembic("history")
    order, bad = [], []
    for line in hist.splitlines():
        m = re.match(r"^(.*?) -> (\S+)((?: \([^)]*\))*), (.*)$", line)
        if not m:
            continue
        parents, rid, flags, doc = m.groups()
        deps = ""
        dm = re.match(r"^(.*) \(([^)]*)\)$", parents)
        if dm:
            parents, deps = dm.group(1), dm.group(2).replace(", ", ",")
        order.append(rid)
        labels = set()
        lm = re.match(r"^ \(([^)]*)\)", flags)
        if lm and lm.group(1) not in ("head", "branchpoint", "mergepoint", "effective head"):
            labels = set(x.strip() for x in lm.group(1).split(","))
        mine = graph.get(rid)
        want_parents = [] if parents == "<base>" else [p.strip() for p in parents.split(",")]
        if (not mine or mine[0] != want_parents or mine[1] != deps or mine[2] != labels
                or mine[3] != doc):
            bad.append("  %s: alembic %s %s %r, dgmigrate %s" % (rid, want_parents, labels, doc,
                                                                  mine))
    rc_b, hist_b, err_b = dump("history")
    report("history order", order == hist_b.split(),
           "  alembic %d revisions, dgmigrate %d" % (len(order), len(hist_b.split())))
    report("history details", not bad, "\n".join(bad[:10]))
    report("revision count", len(order) == len(ids), "  %d vs %d" % (len(order), len(ids)))

    cli("upgrade", None, "heads")
    for h in heads[:8]:
        cli("downgrade", h, "base")

    rng = random.Random(len(ids))
    labels = sorted(set().union(*(g[2] for g in graph.values())))
    for _ in range(int(os.environ["CHECKS"])):
        m, h = rng.choice(ids), rng.choice(heads)
        cli("upgrade", m, "heads")
        cli("upgrade", None, m)
        cli("downgrade", h, m)
        cli("upgrade", m, "+%d" % rng.randint(1, 3))
        cli("downgrade", m, "-%d" % rng.randint(1, 2))
        cli("upgrade", None, m[:rng.randint(4, 8)])
        if labels:
            lab = rng.choice(labels)
            cli("upgrade", None, "%s@head" % lab)
            cli("downgrade", h, "%s@base" % lab)
            cli("upgrade", m, "%s@+1" % lab)
        # a state with several heads, reached by the real alembic
        state = []
        for p in rng.sample(ids, min(len(ids), rng.randint(2, 3))):
            nxt = api_heads("upgrade", state, p)
            if nxt is not None:
                state = nxt
        api("upgrade", state, "heads")
        api("downgrade", state, "base")
        api("downgrade", state, rng.choice(ids))
        api("downgrade", state, "-1")
        api("upgrade", state, "+1")

    print("%d checks, %d differences" % (checks, diffs))
    sys.exit(1 if diffs else 0)


main()
PY
