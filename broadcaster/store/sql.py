"""Small SQL constructs the repositories need where a dialect's planner needs steering."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.expression import ColumnClause
from sqlalchemy.sql.visitors import InternalTraversal


class NotForIndex(ColumnElement[Any]):
    """A column that must not drive index choice: ``+col`` on SQLite, ``col`` elsewhere.

    ``UPDATE messages … WHERE id IN (…) AND status = 'QUEUE'`` should find its rows by primary
    key. SQLite's planner (no statistics) prefers the ``status`` index instead and walks every
    QUEUE row of every broadcast on each claim: 3 ms per claim at 20k queued, growing with the
    queue. SQLite's documented way to disqualify a term from index use is a unary ``+``
    (https://sqlite.org/optoverview.html#disqualifying_where_clause_terms_using_unary_); other
    databases plan this right from their statistics.
    """

    inherit_cache = True
    # The wrapped column is part of the statement cache key, or two columns would share SQL.
    _traverse_internals = [("column", InternalTraversal.dp_clauseelement)]

    def __init__(self, column: ColumnClause[Any]) -> None:
        self.column = column
        self.type = column.type


@compiles(NotForIndex)
def _plain(element: NotForIndex, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.column, **kw))


@compiles(NotForIndex, "sqlite")
def _unary_plus(element: NotForIndex, compiler: Any, **kw: Any) -> str:
    return "+" + str(compiler.process(element.column, **kw))


def not_for_index(column: ColumnClause[Any]) -> NotForIndex:
    return NotForIndex(column)
