"""The blind user study that regenerates R2-Talker's Table 3 (MOS of lip-sync, image quality, realness).

    python -m talker.study create runs=runs/baselines out=studies/baselines clips=cross_gender,cross_lingual
    python -m talker.study serve study=studies/baselines            # http://127.0.0.1:8000/, admin token printed
    python -m talker.study results study=studies/baselines          # table3.md / .tex, summary, ratings.csv

:mod:`~talker.study.design` (study.json, balanced orders), :mod:`~talker.study.create` (run folders ->
blind clips), :mod:`~talker.study.store` (SQLAlchemy), :mod:`~talker.study.server` (Flask app),
:mod:`~talker.study.results` (Table 3 through talker.reporting, exclusions, agreement). docs/study.md
says how to run a study.
"""

from talker.study.design import CRITERIA, TABLE3_CRITERIA, Criterion, Item, Study, StudyError, load_study

__all__ = ["CRITERIA", "TABLE3_CRITERIA", "Criterion", "Item", "Study", "StudyError", "load_study"]
