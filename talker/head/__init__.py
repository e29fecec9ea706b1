"""The talking-head model: field + conditioning strategy + renderer state (``TalkingHead``)."""

from talker.head.model import TalkingHead

__all__ = ["TalkingHead"]
