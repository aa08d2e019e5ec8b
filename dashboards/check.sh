#!/usr/bin/env bash
# Checks the Grafana dashboards in this directory:
#   - every *.json parses (python3 -m json.tool);
#   - structure: uid, title, schemaVersion, a ${datasource} Prometheus variable, no
#     hard-coded datasource UID, every panel has a gridPos (no two overlap) and every
#     non-row panel has targets with a non-empty expr;
#   - every PromQL expression parses: each becomes one recording rule in a throwaway
#     rules file and `promtool check rules` must accept it. Grafana variables are
#     replaced first ($__rate_interval, $__interval, $__range -> 5m; dashboard
#     variables such as $job, $instance -> .*), as are the selectors of
#     label_values(...) variable queries.
# Exits non-zero on the first failing step. PROMTOOL=/path/to/promtool overrides.
set -euo pipefail
cd "$(dirname "$0")"
PROMTOOL="${PROMTOOL:-promtool}"
command -v "$PROMTOOL" >/dev/null || { echo "check.sh: $PROMTOOL not found" >&2; exit 2; }

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

for f in *.json; do
  python3 -m json.tool "$f" >/dev/null || { echo "check.sh: $f is not valid JSON" >&2; exit 1; }
  echo "json ok: $f"
done

python3 - "$tmp/dashboards.rules.yml" *.json <<'PY'
import json, re, sys

out, files = sys.argv[1], sys.argv[2:]
errors, rules = [], []
BUILTIN_RANGES = ("__rate_interval", "__interval", "__range")

def walk(panels):
    for p in panels:
        yield p
        yield from walk(p.get("panels", []))

def check_ds(where, ds):
    if ds is None:
        return
    if not (isinstance(ds, dict) and ds.get("uid") == "${datasource}"):
        errors.append(f"{where}: datasource {ds!r} is not the ${{datasource}} variable")

def to_promql(expr, varnames):
    for v in BUILTIN_RANGES:
        expr = expr.replace("${%s}" % v, "5m").replace("$" + v, "5m")
    for v in sorted(varnames, key=len, reverse=True):
        expr = expr.replace("${%s}" % v, ".*").replace("$" + v, ".*").replace("[[%s]]" % v, ".*")
    return expr

for f in files:
    d = json.load(open(f))
    for k in ("uid", "title"):
        if not d.get(k):
            errors.append(f"{f}: no {k}")
    if not isinstance(d.get("schemaVersion"), int) or d["schemaVersion"] < 36:
        errors.append(f"{f}: schemaVersion {d.get('schemaVersion')!r} (want >= 36)")
    variables = d.get("templating", {}).get("list", [])
    names = {v["name"] for v in variables}
    if not any(v["name"] == "datasource" and v["type"] == "datasource" and v.get("query") == "prometheus" for v in variables):
        errors.append(f"{f}: no datasource variable of type prometheus")
    for v in variables:
        if v["type"] != "query":
            continue
        check_ds(f"{f} variable {v['name']}", v.get("datasource"))
        q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
        m = re.fullmatch(r"\s*label_values\((.*),\s*[A-Za-z_][A-Za-z0-9_]*\s*\)\s*", q, re.S)
        if m:
            rules.append((f"{f} variable {v['name']}", to_promql(m.group(1), names)))
        elif not q.startswith("label_values("):
            rules.append((f"{f} variable {v['name']}", to_promql(q, names)))
    cells = {}
    for p in walk(d.get("panels", [])):
        where = f"{f} panel {p.get('id')} {p.get('title')!r}"
        g = p.get("gridPos")
        if not g or not all(isinstance(g.get(k), int) for k in ("h", "w", "x", "y")):
            errors.append(f"{where}: no gridPos")
        else:
            if g["x"] + g["w"] > 24:
                errors.append(f"{where}: gridPos wider than 24")
            for x in range(g["x"], g["x"] + g["w"]):
                for y in range(g["y"], g["y"] + g["h"]):
                    if (x, y) in cells:
                        errors.append(f"{where}: overlaps {cells[(x, y)]}")
                        break
                    cells[(x, y)] = where
                else:
                    continue
                break
        if p.get("type") == "row":
            continue
        check_ds(where, p.get("datasource"))
        targets = p.get("targets") or []
        if not targets:
            errors.append(f"{where}: no targets")
        for t in targets:
            check_ds(f"{where} target {t.get('refId')}", t.get("datasource"))
            e = (t.get("expr") or "").strip()
            if not e:
                errors.append(f"{where} target {t.get('refId')}: empty expr")
                continue
            rules.append((f"{where} target {t.get('refId')}", to_promql(e, names)))

if errors:
    print("\n".join(errors), file=sys.stderr)
    sys.exit(1)

with open(out, "w") as fh:
    fh.write("groups:\n  - name: dashboard-expressions\n    rules:\n")
    for i, (where, e) in enumerate(rules):
        fh.write(f"      # {where}\n      - record: dashboard:expr_{i:03d}\n        expr: {json.dumps(e)}\n")
print(f"structure ok: {len(files)} dashboards, {len(rules)} expressions")
PY

if ! "$PROMTOOL" check rules "$tmp/dashboards.rules.yml" >"$tmp/promtool.out" 2>&1; then
  cat "$tmp/promtool.out"
  echo "check.sh: promtool rejected these expressions:" >&2
  grep -o 'dashboard:expr_[0-9]*' "$tmp/promtool.out" | sort -u | while read -r name; do
    grep -B1 -- "- record: $name\$" "$tmp/dashboards.rules.yml" | head -1 | sed "s/^ *# /  $name: /" >&2
  done
  exit 1
fi
cat "$tmp/promtool.out"
