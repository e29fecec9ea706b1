"""``python -m talker.study create | serve | results`` (see :mod:`talker.study` and docs/study.md)."""

from __future__ import annotations

import ipaddress
import os
import secrets
import sys
from collections.abc import Sequence

from talker.study.design import StudyError, load_study

USAGE = """usage:
  python -m talker.study create runs=<folder>[,<folder>...] out=<study folder> [clips=<setting>,...] [methods=<m>,...]
                                [criteria=lip_sync,image_quality,video_realness] [seconds=8] [ground_truth=<dataset | video>]
                                [broken=true] [link=false] [seed=0] [title=<text>]
  python -m talker.study serve study=<folder> [host=127.0.0.1] [port=8000] [db=<SQLAlchemy URL>] [token=<admin token>]
  python -m talker.study results study=<folder> [db=<SQLAlchemy URL>] [out=<folder>] [table=table3]"""
KEYS = {
    "create": {"runs", "out", "clips", "methods", "criteria", "seconds", "ground_truth", "broken", "link", "seed", "title"},
    "serve": {"study", "host", "port", "db", "token"},
    "results": {"study", "db", "out", "table"},
}
REQUIRED = {"create": ("runs", "out"), "serve": ("study",), "results": ("study",)}
TOKEN_ENV = "TALKER_STUDY_TOKEN"


def _flag(value: str, key: str) -> bool:
    if value.lower() in ("1", "true", "yes"):
        return True
    if value.lower() in ("0", "false", "no"):
        return False
    raise StudyError(f"{key}={value}: say true or false")


def _number(value: str, key: str, kind=float):
    try:
        return kind(value)
    except ValueError as exc:
        raise StudyError(f"{key}={value}: not a number") from exc


def _list(value: str | None) -> list[str] | None:
    return [v for v in value.split(",") if v] if value else None


def create(args: dict[str, str]) -> None:
    from talker.study.create import create_study

    seconds = args.get("seconds", "8")
    study = create_study(
        runs=_list(args["runs"]), out=args["out"], clips=_list(args.get("clips")), methods=_list(args.get("methods")),
        criteria=_list(args.get("criteria")), seconds=None if seconds.lower() in ("none", "all") else _number(seconds, "seconds"),
        ground_truth=args.get("ground_truth"), broken=_flag(args.get("broken", "true"), "broken"),
        link=_flag(args.get("link", "false"), "link"), seed=_number(args.get("seed", "0"), "seed", int),
        **({"title": args["title"]} if "title" in args else {}),
    )
    checks = [i.kind for i in study.items if i.kind != "method"]
    print(f"[talker] study {study.root}: {len(study.methods)} methods ({', '.join(study.methods)}) x {len(study.clips)} clips "
          f"({', '.join(study.clips)}), attention checks: {', '.join(checks) or 'none'}, criteria: {', '.join(study.criterion_keys)}")
    print(f"[talker] serve it: python -m talker.study serve study={study.root}")


def serve(args: dict[str, str]) -> None:
    from talker.study.server import serve as make_server
    from talker.study.store import Store

    study = load_study(args["study"])
    store = Store(study, args.get("db"))
    token = args.get("token") or os.environ.get(TOKEN_ENV) or secrets.token_urlsafe(18)
    host, port = args.get("host", "127.0.0.1"), _number(args.get("port", "8000"), "port", int)
    if not 0 <= port <= 65535:
        raise StudyError(f"port={port}: not a TCP port (0-65535; 0 picks a free one)")
    server = make_server(study, store, token, host, port)
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{server.effective_port}/"
    if not _loopback(host):
        print(f"[talker] warning: host={host} makes the study reachable from other machines", flush=True)
    print(f"[talker] serving {study.root} ({len(study.items)} clips) at {url}", flush=True)
    print(f"[talker] admin token: {token}", flush=True)
    print(f"[talker] results: {url}admin/results?token={token}   raw ratings: {url}admin/export.csv?token={token}", flush=True)
    print(f"[talker] ratings database: {store.url}", flush=True)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        store.close()


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def results(args: dict[str, str]) -> None:
    from talker.study.results import TABLE, analyse, summary_markdown, write_results
    from talker.study.store import Store

    study = load_study(args["study"])
    store = Store(study, args.get("db"))
    try:
        outcome = analyse(study, store.ratings(), store.rater_numbers(), args.get("table", TABLE))
    finally:
        store.close()
    written = write_results(outcome, args.get("out") or study.root / "results")
    print(summary_markdown(outcome))
    print(f"[talker] wrote {', '.join(str(p) for p in written)}")


COMMANDS = {"create": create, "serve": serve, "results": results}


def parse(argv: Sequence[str]) -> tuple[str, dict[str, str]]:
    """``create|serve|results key=value ...`` -> (command, arguments); a usage problem raises StudyError."""
    command = argv[0] if argv else None
    if command not in COMMANDS:
        raise StudyError("say create, serve or results")
    args, bad = {}, []
    for item in argv[1:]:
        key, sep, value = item.partition("=")
        if sep and key in KEYS[command]:
            args[key] = value
        else:
            bad.append(item)
    missing = [k for k in REQUIRED[command] if k not in args]
    if bad or missing:
        raise StudyError(f"not understood: {', '.join(bad)}" if bad else f"missing {', '.join(f'{k}=' for k in missing)}")
    return command, args


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        command, args = parse(argv)
    except StudyError as exc:
        where = f" {argv[0]}" if argv and argv[0] in COMMANDS else ""
        print(f"talker.study{where}: error: {exc}\n{USAGE}", file=sys.stderr)
        sys.exit(2)
    try:
        COMMANDS[command](args)
    except (StudyError, ValueError, OSError) as exc:
        print(f"talker.study {command}: error: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
