"""Before/after under load: this tree against another commit, served side by side, measured in turns.

    .venv/bin/python bench/ab.py --base 2f251e0                  # about 5 minutes
    .venv/bin/python bench/ab.py --base HEAD~1 --rounds 6 --clients 8,32 --capacity 1000
    .venv/bin/python bench/ab.py --base HEAD --base-workers 3 --workers 4   # worker counts instead

This machine's speed drifts by up to 2x from one minute to the next (other tenants), so two
`bench/run.py` runs a few minutes apart do not compare. Here both trees are served at once
(two gunicorns, same settings as bench/run.py, the same database and Redis db), and each round
measures them one after the other, in alternating order (ABBA): a hot on-sale of `--capacity`
tickets and the framework ceiling, at each number of `--clients`. The report gives every
round's figures, the median of each, and the median of the per-round ratios after/before,
which drift cancels out of. The server not being measured is idle.

The other commit is checked out with `git worktree` into a temporary folder (removed at the
end) and runs on this tree's `.venv`; both trees must have the same migrations, or with
`--newer-schema` this tree's may add to the base's (the base then runs on the newer schema). Uses the
bench's database `bench_ticketing` (recreated) and Redis db 13, like bench/run.py, and
takes the same lock: one bench at a time.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [str(ROOT), *(p for p in sys.path if Path(p or ".").resolve() not in (ROOT, ROOT / "bench"))]

from bench import infra  # noqa: E402
from bench.run import _csv_ints, prepare  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", required=True, help="the commit to compare with (any git revision)")
    parser.add_argument("--rounds", type=int, default=8, help="rounds, each measuring both trees (8)")
    parser.add_argument("--clients", type=_csv_ints, default=[8, 32], help="HTTP clients (8,32)")
    parser.add_argument("--capacity", type=int, default=1500, help="tickets of each hot run (1500)")
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each ceiling measurement (3)")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn workers of each server (3)")
    parser.add_argument("--base-workers", type=int, help="gunicorn workers of the base's server (--workers); with "
                        "--base HEAD this compares worker counts")
    parser.add_argument("--newer-schema", action="store_true",
                        help="allow a base whose migrations are a subset of this tree's: the base then runs on this "
                        "tree's schema, which is sound only when the newer migrations add tables, and columns with "
                        "a database default (db_default), and nothing the base's queries would trip on")
    return parser.parse_args(argv)


def _git(*args: str, check: bool = True) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, check=check, capture_output=True,  # noqa: S603, S607
                          text=True).stdout.strip()


def _migrations(tree: Path) -> list[str]:
    """A tree's migrations by file name and content: a package that moved keeps the same schema."""
    return sorted(f"{p.name} ({hashlib.sha256(p.read_bytes()).hexdigest()[:12]})"
                  for p in tree.glob("*/migrations/0*.py"))


def _worktree(stack: ExitStack, revision: str, *, newer_schema: bool = False) -> tuple[Path, str]:
    commit = _git("rev-parse", "--short", revision)
    folder = Path(tempfile.mkdtemp(prefix=f"bench-ab-{commit}-"))
    _git("worktree", "add", "--detach", "--force", str(folder), commit)
    stack.callback(_git, "worktree", "remove", "--force", str(folder), check=False)
    migrations, theirs = _migrations(ROOT), _migrations(folder)
    if migrations != theirs:
        extra = sorted(set(migrations) - set(theirs))
        if not (newer_schema and set(theirs) <= set(migrations)):
            raise SystemExit(f"{commit} has other migrations than this tree: the two cannot share a database "
                             "(--newer-schema when this tree's only add to the base's).")
        print(f"{commit} runs on this tree's schema, {len(extra)} migrations newer: "
              + ", ".join(map(str, extra)), file=sys.stderr, flush=True)
    return folder, commit


def _on_sale(server: infra.Server, capacity: int, label: str, tokens: list[str]):
    """A fresh on-sale of `capacity` tickets and the load target aiming `tokens` at it on `server`."""
    from bench import load, seed

    event, ticket_type = seed.on_sale(capacity=capacity, label=label)
    return load.Target(server.base_url, str(event.pk), str(ticket_type.pk), tokens), ticket_type


def _round(servers: dict, order: list[str], args: argparse.Namespace, tokens: list[str]) -> dict:
    from bench import load, seed

    figures: dict[str, dict] = {}
    for name in order:
        for clients in args.clients:
            target, ticket_type = _on_sale(servers[name], args.capacity, f"ab {name} N={clients}", tokens[:clients])
            hot = load.hot_onsale(target, timeout=max(120.0, args.capacity / 10))
            check = seed.oversell_check(ticket_type)
            if not check["ok"] or hot["errors"]:
                raise SystemExit(f"{name} N={clients}: oversell check {check}, errors {hot['errors']}")
            ceiling = load.ceiling(target, duration=args.seconds)
            figures[f"{name} N={clients}"] = {
                "reserve": hot["reservations_per_s"], "p99": hot["latency_201"]["p99"],
                "ceiling": ceiling["requests_per_s"],
            }
    return figures


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)) for row in rows)


def report(rounds: list[dict], args: argparse.Namespace, names: tuple[str, str]) -> str:
    before, after = names
    rows = [["clients", "figure", *[f"r{i + 1}" for i in range(len(rounds))], "median", "after/before (median)"]]
    for clients in args.clients:
        for figure in ("reserve", "ceiling", "ratio", "p99"):
            for name in names:
                values = []
                for r in rounds:
                    f = r[f"{name} N={clients}"]
                    values.append(f["reserve"] / f["ceiling"] if figure == "ratio" else f[figure])
                change = ""
                if name == after:
                    per_round = []
                    for r in rounds:
                        a, b = r[f"{after} N={clients}"], r[f"{before} N={clients}"]
                        if figure == "ratio":
                            per_round.append((a["reserve"] / a["ceiling"]) / (b["reserve"] / b["ceiling"]))
                        else:
                            per_round.append(a[figure] / b[figure])
                    change = f"{statistics.median(per_round):.2f}"
                fmt = "{:.2f}" if figure == "ratio" else "{:.0f}"
                rows.append([str(clients), f"{figure} {name}", *[fmt.format(v) for v in values],
                             fmt.format(statistics.median(values)), change])
    return _table(rows)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with infra.exclusive_run(), ExitStack() as stack:
        folder, commit = _worktree(stack, args.base, newer_schema=args.newer_schema)
        prepare()
        from bench import load, seed

        dirty = _git("status", "--porcelain", "--untracked-files=no")
        names = (f"before {commit}", f"after {_git('rev-parse', '--short', 'HEAD')}{'+changes' if dirty else ''}")
        tokens = seed.buyers(max(args.clients))
        servers = {}
        workers = (args.base_workers or args.workers, args.workers)
        if workers[0] != workers[1]:
            names = tuple(f"{name} ({n} workers)" for name, n in zip(names, workers, strict=True))
        for name, root, port, count in ((names[0], folder, 8766, workers[0]), (names[1], ROOT, 8767, workers[1])):
            config = infra.ServerConfig(count, "sync", 1, infra.pick_port(port))
            log = Path(tempfile.gettempdir()) / f"bench-ab-{os.getpid()}-{port}.log"
            servers[name] = stack.enter_context(infra.gunicorn(config, log, root=root))
            target, _ticket_type = _on_sale(servers[name], 200, f"warm-up {name}", tokens)
            load.warm_up(target)
            load.hot_onsale(target)
        rounds = []
        for i in range(args.rounds):
            order = list(names) if i % 2 == 0 else list(reversed(names))
            rounds.append(_round(servers, order, args, tokens))
            done = ", ".join(f"{k} {v['reserve']:.0f}/{v['ceiling']:.0f}" for k, v in rounds[-1].items())
            print(f"[{time.strftime('%H:%M:%S')}] round {i + 1}: {done}", file=sys.stderr, flush=True)
        check = infra.check_inventory()
    print(f"{names[0]} against {names[1]}: {args.rounds} rounds (ABBA), hot on-sale of {args.capacity} tickets, "
          f"ceiling {args.seconds:.0f} s, sync workers, {time.strftime('%Y-%m-%d %H:%M UTC')}")
    print("reserve: reservations/s; ceiling: requests/s; ratio: reserve/ceiling; p99: ms of the 201s")
    print(report(rounds, args, names))
    print(f"check_inventory: {'ok' if check['ok'] else check['output']}")
    return 0 if check["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
