"""The ratings database (SQLAlchemy): raters and their answers, one transaction per answer.

Any SQLAlchemy URL works; the default is an SQLite file next to the study (``ratings.sqlite``).
Tables::

    study    the study's fingerprint (a database belongs to one study: serving it for another fails)
    raters   id, token (the anonymous cookie value), number (arrival order: picks the balanced order)
    answers  (rater, item, criterion) -> score, answered_at; the key makes a repeat replace the answer

Each answer is written in its own transaction, so a server killed mid-request leaves either the
previous answer or the new one, never a half-written row (SQLite's journal does the rest).
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKey,
    Integer,
    String,
    create_engine,
    event,
    func,
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from talker.study.design import SCORES, Study, StudyError

DB_FILE = "ratings.sqlite"


class Base(DeclarativeBase):
    pass


class StudyRecord(Base):
    __tablename__ = "study"
    key: Mapped[str] = mapped_column(String(32), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))


class Rater(Base):
    __tablename__ = "raters"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    number: Mapped[int] = mapped_column(Integer, unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Answer(Base):
    __tablename__ = "answers"
    __table_args__ = (CheckConstraint(f"score >= {min(SCORES)} AND score <= {max(SCORES)}", name="score_range"),)
    rater_id: Mapped[int] = mapped_column(ForeignKey("raters.id"), primary_key=True)
    item: Mapped[str] = mapped_column(String(16), primary_key=True)
    criterion: Mapped[str] = mapped_column(String(64), primary_key=True)
    score: Mapped[int] = mapped_column(Integer)
    answered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


@dataclass(frozen=True)
class RaterInfo:
    id: int
    token: str
    number: int


@dataclass(frozen=True)
class Rating:
    rater: int  # the rater's arrival number (anonymous)
    item: str
    criterion: str
    score: int
    answered_at: datetime


def fingerprint(study: Study) -> str:
    """What must not change under a database: the clips and the criteria."""
    data = json.dumps([[i.id for i in study.items], study.criterion_keys])
    return hashlib.sha256(data.encode()).hexdigest()


def default_url(study: Study) -> str:
    return f"sqlite:///{(study.root / DB_FILE).resolve()}"


class Store:
    """Raters and answers of one study in the database at ``url``."""

    def __init__(self, study: Study, url: str | None = None) -> None:
        self.url = url or default_url(study)
        self.engine = create_engine(self.url)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        Base.metadata.create_all(self.engine)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._claim(study)

    def _claim(self, study: Study) -> None:
        mine = fingerprint(study)
        with self.transaction() as session:
            record = session.get(StudyRecord, "fingerprint")
            if record is None:
                session.add(StudyRecord(key="fingerprint", fingerprint=mine))
            elif record.fingerprint != mine:
                raise StudyError(f"db={self.url}: holds the ratings of another study (its clips or criteria differ)")

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        with self.sessions() as session, session.begin():
            yield session

    def new_rater(self) -> RaterInfo:
        """A new anonymous rater with the next arrival number (retried if two arrive at once)."""
        for _ in range(20):
            try:
                with self.transaction() as session:
                    number = session.scalar(select(func.coalesce(func.max(Rater.number) + 1, 0)))
                    rater = Rater(token=secrets.token_urlsafe(24), number=number, created_at=_now())
                    session.add(rater)
                    session.flush()
                    return RaterInfo(rater.id, rater.token, rater.number)
            except IntegrityError:
                continue
        raise RuntimeError("could not register a rater: the database keeps refusing new rows")

    def rater(self, token: str | None) -> RaterInfo | None:
        if not token:
            return None
        with self.sessions() as session:
            rater = session.scalar(select(Rater).where(Rater.token == token))
            return RaterInfo(rater.id, rater.token, rater.number) if rater else None

    def save(self, rater: RaterInfo, item: str, criterion: str, score: int) -> None:
        """Insert or replace one answer, in one transaction."""
        for _ in range(2):  # a concurrent first answer to the same question: the retry updates it
            try:
                with self.transaction() as session:
                    answer = session.get(Answer, (rater.id, item, criterion))
                    if answer is None:
                        session.add(Answer(rater_id=rater.id, item=item, criterion=criterion, score=score, answered_at=_now()))
                    else:
                        answer.score, answer.answered_at = score, _now()
                return
            except IntegrityError:
                continue
        raise RuntimeError(f"could not save the answer to {item}/{criterion}")

    def answers(self, rater: RaterInfo) -> dict[tuple[str, str], int]:
        """(item, criterion) -> score of one rater."""
        with self.sessions() as session:
            rows = session.execute(select(Answer.item, Answer.criterion, Answer.score).where(Answer.rater_id == rater.id))
            return {(item, criterion): score for item, criterion, score in rows}

    def ratings(self) -> list[Rating]:
        """Every answer of every rater, by rater number and time."""
        with self.sessions() as session:
            rows = session.execute(
                select(Rater.number, Answer.item, Answer.criterion, Answer.score, Answer.answered_at)
                .join(Rater, Rater.id == Answer.rater_id)
                .order_by(Rater.number, Answer.answered_at)
            )
            return [Rating(*row) for row in rows]

    def rater_numbers(self) -> list[int]:
        with self.sessions() as session:
            return list(session.scalars(select(Rater.number).order_by(Rater.number)))

    def close(self) -> None:
        self.engine.dispose()


def _sqlite_pragmas(connection, _record) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")  # waitress's threads write one at a time
    cursor.close()


def _now() -> datetime:
    return datetime.now(timezone.utc)
