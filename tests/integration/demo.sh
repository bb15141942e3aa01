#!/usr/bin/env bash
# demo.sh - `make demo`: a throwaway PostgreSQL under ./.demo, the fixture
# application as a real git repository, a model store, and dgmigrate run
# on plans/demo.yaml. The cluster is stopped at the end, whatever happens.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
source "$ROOT/tests/integration/lib.sh"
DEMO=$ROOT/.demo
DGMIGRATE=${DGMIGRATE:-$ROOT/dgmigrate}

step() { printf '\n\033[1m== %s\033[0m\n' "$*" >&2; }

cluster_stop_if_any() { [[ -d $DEMO/pg/data ]] && DGM_PGHOST=$DEMO/pg cluster_stop; return 0; }
cluster_stop_if_any
rm -rf "$DEMO"
trap 'cluster_stop' EXIT

step "starting a throwaway PostgreSQL 15 under .demo/pg"
cluster_start "$DEMO"
new_db demo

step "building the fixture application (tags v1.5, v1.6, v1.6-broken) in .demo/app"
bash "$ROOT/fixtures/build-app-repo.sh" "$DEMO/app" >/dev/null
python3 "$ROOT/fixtures/gen-model-store.py" "$DEMO/models" --weights-mb 4 --json-files 500 >/dev/null

export DATABASE_URL; DATABASE_URL=$(db_url demo)
export ML_MODEL_STORAGE_PATH=$DEMO/models
export SECRET_KEY=demo-secret-key

step "the database at v1.5 (alembic upgrade head at the v1.5 checkout)"
(cd "$DEMO/app" && alembic upgrade head 2>&1 | tail -2)

PLAN=$ROOT/plans/demo.yaml

step "dgmigrate validate plans/demo.yaml"
"$DGMIGRATE" validate "$PLAN"

step "dgmigrate status (before)"
"$DGMIGRATE" status "$PLAN"

step "dgmigrate apply --dry-run (nothing changes; the steps and the SQL)"
"$DGMIGRATE" apply --dry-run "$PLAN" > "$DEMO/dry-run.txt"
head -40 "$DEMO/dry-run.txt"
echo "... (the whole dry run is in .demo/dry-run.txt)"

step "dgmigrate apply plans/demo.yaml (v1.5 -> v1.6)"
"$DGMIGRATE" apply "$PLAN"

step "the run's report (.demo/backups/state/reports/)"
cat "$(ls -t "$DEMO"/backups/state/reports/*.md | head -1)"

step "dgmigrate rollback --to v1.5"
"$DGMIGRATE" rollback --to v1.5 "$PLAN" --reason "demo: back to v1.5"

step "dgmigrate status (after: database, code and store back at v1.5)"
"$DGMIGRATE" status "$PLAN"
"$DGMIGRATE" history "$PLAN"
"$DGMIGRATE" backups list "$PLAN"

step "done; the cluster is stopped and .demo kept for inspection"
