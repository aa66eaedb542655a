"""Cluster mode for the schema: the same migration files, run as replicated, sharded tables.

With ``clickhouse_cluster`` set, each statement of a migration is rewritten before it runs:

- ``CREATE TABLE t (...) ENGINE = XMergeTree(args) ...`` becomes ``t_local``, a
  ``ReplicatedXMergeTree('/clickhouse/tables/{shard}/<db>/t', '{replica}', args)`` on every
  node, plus ``t``, a ``Distributed`` table over it. Every other statement keeps using ``t``, so
  reads, reports and the worker's inserts go through the Distributed tables unchanged.
- ``CREATE MATERIALIZED VIEW mv TO t AS SELECT ... FROM s`` reads ``s_local`` and writes
  ``t_local``: a view sees the block inserted on its own node, and its rows stay there.
- ``CREATE VIEW``, ``INSERT ... SELECT`` (backfills): ``ON CLUSTER`` for the view; the insert
  goes through the Distributed tables as written.
- ``ALTER TABLE t ...`` alters ``t_local`` on the cluster; a column change then re-creates the
  Distributed ``t`` (18.16 cannot alter a Distributed table over replicated shards), which holds
  no data. ``DROP TABLE|VIEW IF EXISTS`` drops on the cluster (a table's local part too).

Every DDL statement runs ``ON CLUSTER``. The sharding key keeps every copy of a row on one shard,
so ``FINAL`` and the uniqExact states stay exact per shard: ``cityHash64(product_id)`` for
tables with a ``product_id`` (a review never changes product, so its copies, its aggregates
and its product's reputation live on one shard), otherwise the first sorting-key column.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

LOCAL_SUFFIX = "_local"

_CREATE_TABLE = re.compile(
    r"^CREATE TABLE IF NOT EXISTS (?P<name>\w+)\s*\((?P<columns>.*)\)\s*"
    r"ENGINE\s*=\s*(?P<family>\w*MergeTree)\s*(?:\((?P<args>[^)]*)\))?\s*(?P<rest>.*)$",
    re.S | re.I,
)
_ORDER_BY = re.compile(r"ORDER BY\s*\(?\s*(\w+)", re.I)
_CREATE_MV = re.compile(
    r"^CREATE MATERIALIZED VIEW IF NOT EXISTS (?P<name>\w+)\s+TO\s+(?P<target>\w+)\s+"
    r"AS\s+(?P<select>.*)$",
    re.S | re.I,
)
_CREATE_VIEW = re.compile(
    r"^CREATE VIEW IF NOT EXISTS (?P<name>\w+)\s+(?P<rest>AS\s+.*)$", re.S | re.I
)
_DROP = re.compile(r"^DROP (?P<what>TABLE|VIEW) IF EXISTS (?P<name>\w+)\s*$", re.I)
_ALTER = re.compile(r"^ALTER TABLE (?P<name>\w+)\s+(?P<rest>.*)$", re.S | re.I)
# a table after FROM or JOIN; not ARRAY JOIN, a qualified name, or a function call
_FROM = re.compile(r"(?<!ARRAY\s)\b(FROM|JOIN)\s+(\w+)\b(?!\s*[.(])", re.I)


class ClusterSchemaError(ValueError):
    """A migration statement that cluster mode does not know how to run."""


@dataclass(frozen=True)
class ShardedTable:
    name: str
    sharding_key: str

    def distributed(self, cluster: str, database: str) -> str:
        local = f"{self.name}{LOCAL_SUFFIX}"
        return (
            f"CREATE TABLE IF NOT EXISTS {database}.{self.name} ON CLUSTER {cluster} "
            f"AS {database}.{local} ENGINE = Distributed({cluster}, {database}, {local}, "
            f"{self.sharding_key})"
        )


def sharded_table(statement: str) -> ShardedTable | None:
    """The table a ``CREATE TABLE ... MergeTree`` statement makes, with its sharding key."""
    match = _CREATE_TABLE.match(statement.strip())
    if not match:
        return None
    if re.search(r"\bproduct_id\b", match["columns"]):
        return ShardedTable(match["name"], "cityHash64(product_id)")
    order = _ORDER_BY.search(match["rest"])
    if not order:
        raise ClusterSchemaError(f"{match['name']}: no ORDER BY to shard by")
    return ShardedTable(match["name"], f"cityHash64({order[1]})")


def sharded_tables(statements: Iterable[str]) -> dict[str, ShardedTable]:
    """Every MergeTree table the migrations create (all of them, applied or not: an ALTER in a
    later migration needs the key of a table made earlier)."""
    tables = (sharded_table(s) for s in statements)
    return {t.name: t for t in tables if t is not None}


def zookeeper_path(database: str, table: str) -> str:
    return f"/clickhouse/tables/{{shard}}/{database}/{table}"


def qualify_sources(select: str, database: str, rename: dict[str, str]) -> str:
    """Prefix every unqualified ``FROM``/``JOIN`` table with ``database`` (DDL ON CLUSTER
    runs on each node in that node's default database), renamed through ``rename``."""
    return _FROM.sub(lambda m: f"{m[1]} {database}.{rename.get(m[2], m[2])}", select)


def cluster_statements(
    statement: str, cluster: str, database: str, tables: dict[str, ShardedTable]
) -> list[str]:
    """The statements that do on the cluster what ``statement`` does on one node."""
    text = statement.strip()
    if match := _CREATE_TABLE.match(text):
        name, family = match["name"], match["family"]
        args = [f"'{zookeeper_path(database, name)}'", "'{replica}'"]
        if match["args"] and match["args"].strip():
            args.append(match["args"].strip())
        local = (
            f"CREATE TABLE IF NOT EXISTS {database}.{name}{LOCAL_SUFFIX} ON CLUSTER {cluster} "
            f"({match['columns']}) ENGINE = Replicated{family}({', '.join(args)}) "
            f"{match['rest']}"
        )
        return [local, tables[name].distributed(cluster, database)]
    if match := _CREATE_MV.match(text):
        target = match["target"]
        if target not in tables:
            raise ClusterSchemaError(f"{match['name']}: target {target} is not a MergeTree table")
        locals_ = {name: f"{name}{LOCAL_SUFFIX}" for name in tables}
        select = qualify_sources(match["select"], database, locals_)
        return [
            f"CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.{match['name']} "
            f"ON CLUSTER {cluster} TO {database}.{target}{LOCAL_SUFFIX} AS {select}"
        ]
    if match := _CREATE_VIEW.match(text):
        rest = qualify_sources(match["rest"], database, {})
        return [f"CREATE VIEW IF NOT EXISTS {database}.{match['name']} ON CLUSTER {cluster} {rest}"]
    if match := _ALTER.match(text):
        name = match["name"]
        if name not in tables:
            raise ClusterSchemaError(f"ALTER TABLE {name}: not a MergeTree table of the schema")
        alter = f"ALTER TABLE {database}.{name}{LOCAL_SUFFIX} ON CLUSTER {cluster} {match['rest']}"
        if not re.search(r"\bCOLUMN\b", match["rest"], re.I):
            return [alter]  # settings, TTLs...: the Distributed table has none
        return [
            alter,
            f"DROP TABLE IF EXISTS {database}.{name} ON CLUSTER {cluster}",
            tables[name].distributed(cluster, database),
        ]
    if match := _DROP.match(text):
        name = match["name"]
        drops = [f"DROP TABLE IF EXISTS {database}.{name} ON CLUSTER {cluster}"]
        if name in tables:
            drops.append(
                f"DROP TABLE IF EXISTS {database}.{name}{LOCAL_SUFFIX} ON CLUSTER {cluster}"
            )
        return drops
    if re.match(r"^INSERT\s+INTO\s", text, re.I):
        return [text]
    raise ClusterSchemaError(f"cluster mode cannot run: {text[:80]}...")
