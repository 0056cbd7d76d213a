"""``jqc doctor``: canned INFO replies (no server), the embedded backend, and a real server."""

from __future__ import annotations

from typing import Any

import jqc
from jqc.coordinator import doctor
from jqc.coordinator.doctor import Level, evaluate_info
from tests.conftest import open_backend
from tests.coordinator.conftest import MakeUser

HEALTHY_INFO: dict[str, Any] = {
    "redis_version": "7.2.4",
    "redis_mode": "standalone",
    "role": "master",
    "used_memory": 50 * 2**20,
    "used_memory_peak": 80 * 2**20,
    "maxmemory": 0,
    "maxmemory_policy": "noeviction",
    "evicted_keys": 0,
    "connected_clients": 12,
    "blocked_clients": 3,
    "maxclients": 10000,
    "rejected_connections": 0,
    "instantaneous_ops_per_sec": 1500,
    "keyspace_hits": 900,
    "keyspace_misses": 100,
    "aof_enabled": 1,
    "aof_last_write_status": "ok",
    "rdb_last_bgsave_status": "ok",
}


def by_check(findings: list[doctor.Finding]) -> dict[str, list[doctor.Finding]]:
    out: dict[str, list[doctor.Finding]] = {}
    for f in findings:
        out.setdefault(f.check, []).append(f)
    return out


def level_of(findings: list[doctor.Finding], check: str) -> Level:
    return max((f.level for f in by_check(findings)[check]), key=lambda lv: lv.rank)


def test_a_healthy_server() -> None:
    found = evaluate_info(HEALTHY_INFO, {"save": "3600 1", "appendfsync": "everysec"})
    assert {f.level for f in found} <= {Level.OK, Level.INFO}
    checks = by_check(found)
    assert checks["version"][0].message == "Redis 7.2.4"
    assert checks["memory"][0].message == "used 50.0 MiB, peak 80.0 MiB, no maxmemory limit"
    assert checks["clients"][0].message == "12 connected, 3 blocked, maxclients 10000"
    assert checks["ops"][0].message == "1500 ops/s"
    assert checks["hit rate"][0].message == "90.0% of 1000 key lookups"
    assert checks["persistence"][0].message == "AOF on (appendfsync everysec), RDB save '3600 1'"


def test_versions() -> None:
    assert level_of(evaluate_info({**HEALTHY_INFO, "redis_version": "6.0.16"}), "version") == Level.FAIL
    assert level_of(evaluate_info({**HEALTHY_INFO, "redis_version": "6.2.14"}), "version") == Level.WARN
    assert level_of(evaluate_info({**HEALTHY_INFO, "redis_version": "7.0.15"}), "version") == Level.OK


def test_eviction_policy_and_evictions() -> None:
    found = evaluate_info({**HEALTHY_INFO, "maxmemory_policy": "allkeys-lru", "evicted_keys": 12})
    assert level_of(found, "maxmemory-policy") == Level.WARN
    assert "set noeviction" in by_check(found)["maxmemory-policy"][0].message
    assert level_of(found, "evictions") == Level.FAIL


def test_memory_against_maxmemory() -> None:
    near = {**HEALTHY_INFO, "maxmemory": 60 * 2**20}
    assert level_of(evaluate_info(near), "memory") == Level.WARN
    full = {**HEALTHY_INFO, "maxmemory": 51 * 2**20}
    assert level_of(evaluate_info(full), "memory") == Level.FAIL


def test_persistence() -> None:
    none = evaluate_info({**HEALTHY_INFO, "aof_enabled": 0}, {"save": ""})
    assert level_of(none, "persistence") == Level.WARN
    assert "a restart loses every job" in by_check(none)["persistence"][0].message
    unknown = evaluate_info({**HEALTHY_INFO, "aof_enabled": 0}, None)
    assert level_of(unknown, "persistence") == Level.INFO
    broken = evaluate_info({**HEALTHY_INFO, "rdb_last_bgsave_status": "err"}, {"save": "60 1"})
    assert level_of(broken, "persistence") == Level.FAIL


def test_clients_and_replicas() -> None:
    crowded = evaluate_info({**HEALTHY_INFO, "connected_clients": 9500, "rejected_connections": 4})
    assert level_of(crowded, "clients") == Level.WARN
    replica = evaluate_info({**HEALTHY_INFO, "role": "slave"})
    assert level_of(replica, "mode") == Level.WARN


def test_unparsed_and_missing_fields() -> None:
    assert evaluate_info({})[0].level == Level.FAIL  # no version: cannot vouch for it
    assert by_check(evaluate_info({"redis_version": "7.0.0", "used_memory": "oops"})).get("memory") is None


def test_embedded_backend_says_so_instead_of_failing() -> None:
    report = doctor.run(jqc.connect())
    assert report.embedded and report.worst == Level.OK
    assert [f.check for f in report.findings] == ["connection", "layout", "server"]
    assert "embedded backend" in report.findings[2].message
    assert report.to_dict()["worst"] == "ok"


def test_unreachable_server_is_one_failure(clock: jqc.VirtualClock) -> None:
    report = doctor.run(jqc.connect("redis://:hunter2@127.0.0.1:1/0", clock=clock, socket_connect_timeout=0.5))
    assert report.worst == Level.FAIL and len(report.findings) == 1
    assert "hunter2" not in str(report.to_dict())


def test_real_server(clock: jqc.VirtualClock) -> None:
    conn = open_backend("redis", clock)
    try:
        report = doctor.run(conn)
    finally:
        conn.close()
    checks = by_check(list(report.findings))
    assert not report.embedded
    assert checks["version"][0].message.startswith("Redis ")
    for name in ("memory", "maxmemory-policy", "clients", "ops", "hit rate", "persistence", "operations"):
        assert name in checks, name
    assert any("may add jobs" in f.message and "obliterate queues" in f.message for f in checks["operations"])


def test_real_server_as_a_restricted_user(make_user: MakeUser) -> None:
    report = doctor.run(make_user("producer"))
    checks = by_check(list(report.findings))
    assert "INFO not allowed" in checks["server"][0].message
    assert "may not read its own rules" in checks["user"][0].message
    ops = [f.message for f in checks["operations"]]
    assert ops[0] == "may add jobs" and ops[1].startswith("may not ")
    assert {"claim jobs", "remove jobs", "obliterate queues", "drain queues"} <= set(ops[1][8:].split(", "))
    worker = by_check(list(doctor.run(make_user("worker")).findings))
    assert "claim jobs" in worker["operations"][0].message and "obliterate" in worker["operations"][1].message
