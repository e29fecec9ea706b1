"""The ``key=value`` command lines of ``talker.evaluate`` and ``talker.baselines.wav2lip``."""

from __future__ import annotations

from collections.abc import Sequence


def parse_arguments(
    argv: Sequence[str], keys: set[str], tags: bool = True
) -> tuple[dict[str, str], dict[str, str], list[str], list[str]]:
    """``key=value`` words -> (arguments in ``keys``, ``tag.<k>`` values, dotted config overrides, the rest)."""
    args: dict[str, str] = {}
    tag_values: dict[str, str] = {}
    overrides: list[str] = []
    bad: list[str] = []
    for item in argv:
        if "=" not in item:
            bad.append(item)
            continue
        key, value = item.split("=", 1)
        if tags and key.startswith("tag."):
            tag_values[key[4:]] = value
        elif key in keys:
            args[key] = value
        elif "." in key:
            overrides.append(item)
        else:
            bad.append(item)
    return args, tag_values, overrides, bad
