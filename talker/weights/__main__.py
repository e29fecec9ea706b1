"""``python -m talker.weights list [--verify]`` and ``python -m talker.weights fetch [all | name ...]``.

``fetch`` fills the caches ahead of time (a cluster's login node, before jobs that run offline);
``list`` shows each file, whether it is there, and where.
"""

from __future__ import annotations

import argparse
import sys

from talker.weights.files import REGISTRY, HubModel, WeightsFile, WeightsUnavailable, offline_reason


def describe(entry: WeightsFile | HubModel, verify: bool = False) -> tuple[str, str, str]:
    """(status, location, source) of one registry entry."""
    if isinstance(entry, HubModel):
        return ("present" if entry.present() else "missing"), str(entry.path()), f"hf.co/{entry.repo_id}"
    path = entry.path()
    if not path.is_file():
        return "missing", str(path.absolute()), entry.url
    status = f"present ({path.stat().st_size / 1e6:.1f} MB)"
    if verify:
        problem = entry.verify(path)
        status = f"CORRUPT ({problem})" if problem else status + (", verified" if entry.sha256 or entry.size else ", nothing published to verify")
    return status, str(path.absolute()), entry.url


def list_weights(verify: bool) -> int:
    rows = [(name, *describe(entry, verify), entry.used_by) for name, entry in REGISTRY.items()]
    width = max(len(r[0]) for r in rows)
    for name, status, where, source, used_by in rows:
        print(f"{name:<{width}}  {status}\n{'':<{width}}  {where}\n{'':<{width}}  from {source}; used by {used_by}")
    missing = [r[0] for r in rows if r[1] == "missing"]
    reason = offline_reason()
    if missing:
        print(f"\nmissing: {', '.join(missing)} ({'offline: ' + reason if reason else 'downloaded on first use'}; "
              f"`python -m talker.weights fetch` gets them now)")
    return 1 if any(r[1].startswith("CORRUPT") for r in rows) else 0


def fetch(names: list[str]) -> int:
    if not names or names == ["all"]:
        names = list(REGISTRY)
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        print(f"talker.weights: error: unknown {', '.join(unknown)}; choose from all, {', '.join(REGISTRY)}", file=sys.stderr)
        return 2
    failed = 0
    for name in names:
        try:
            path = REGISTRY[name].ensure()
        except WeightsUnavailable as exc:
            print(f"talker.weights: {name}: {exc}", file=sys.stderr)
            failed += 1
            continue
        print(f"{name}: {path}")
    return 1 if failed else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m talker.weights", description=__doc__.splitlines()[0].replace("``", ""))
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="show each pretrained file: present or missing, and where")
    listing.add_argument("--verify", action="store_true", help="check present files against their published sha256 / size")
    getting = commands.add_parser("fetch", help="download missing files into their caches now")
    getting.add_argument("names", nargs="*", metavar="name", help=f"all (default) or some of: {', '.join(REGISTRY)}")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    sys.exit(list_weights(args.verify) if args.command == "list" else fetch(args.names))


if __name__ == "__main__":
    main()
