"""Run folders -> DataFrame -> paper-shaped tables (markdown and LaTeX), for the notebooks in notebooks/.

    runs = collect_runs("runs/ablation")
    table = build_table(runs, "table4")        # experiments/table4.yaml
    print(table.markdown()); table.write("tables/")
"""

from talker.reporting.runs import ReportError, collect_runs, read_run
from talker.reporting.tables import Column, Row, Table, TableSpec, build_table, load_table_spec

__all__ = ["Column", "ReportError", "Row", "Table", "TableSpec", "build_table", "collect_runs", "load_table_spec", "read_run"]
