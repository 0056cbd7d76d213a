"""The ``jqc sim`` command, configuration round trips, and the workload generators."""

from __future__ import annotations

import argparse
import json
import random
import shlex
import statistics
from collections.abc import Callable
from pathlib import Path

import pytest

import jqc
from jqc.cli.sim import add_parser, build_config
from jqc.cli.sim import run_sim as main
from jqc.sim import (
    Bursts,
    Daily,
    Empirical,
    Exponential,
    Fixed,
    LogNormal,
    Poisson,
    Replay,
    SimConfig,
    Step,
    parse_arrival,
    parse_faults,
    parse_job_class,
    parse_service,
)

REQUIRED = ("seed", "event_log_sha256", "jobs", "completed", "dead_lettered", "lost", "wait_mean_s", "wait_p95_s",
            "p_wait", "utilization", "invariants")  # fmt: skip


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="jqc")
    add_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["sim", *argv])


def test_cli_runs_and_writes_the_json_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report.json"
    argv = "--workers 5 --jobs 150 --arrival poisson:rate=3 --service lognormal:mean=1,sigma=0.5 "
    argv += f"--faults crash=0.02,pause=0.02 --lock 3 --stall-interval 1 --seed 42 --json {out} --self-check"
    assert main(parse(shlex.split(argv))) == 0
    report = json.loads(out.read_text())
    for key in REQUIRED:
        assert key in report
    assert report["seed"] == 42 and report["jobs"] == 150 and report["lost"] == 0
    assert report["self_check"]["equal"] is True
    for counts in report["invariants"].values():
        assert set(counts) >= {"checked", "violations"} and counts["violations"] == 0
    text = capsys.readouterr().out
    assert "replay: jqc sim --seed 42" in text and report["event_log_sha256"] in text


def test_replay_command_rebuilds_the_same_configuration() -> None:
    config = SimConfig(
        seed=9,
        workers=3,
        jobs=20,
        arrival=Bursts(rate=1.0, size=10, every=30.0, width=2.0),
        service=LogNormal(2.0, 0.3),
        mix=(parse_job_class("a:weight=2,attempts=3,backoff=1,transient=0.1"), parse_job_class("b:priority=4,delay=2")),
        faults=parse_faults("crash=0.01,partition@3/1:duration=4,restart@9:duration=1:persist=0"),
        policy="hpa",
        max_workers=9,
        rate_limit=(5, 1.0),
        lock=4.0,
    )
    command = config.replay_command()
    assert command.startswith("jqc sim ")
    assert build_config(parse(shlex.split(command)[2:])) == config


def test_bad_arguments_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(parse(["--arrival", "nonsense:rate=1"])) == 2
    assert "unknown arrival" in capsys.readouterr().err
    assert main(parse(["--service", "fixed:slow"])) == 2
    assert "fixed: the service time must be a number, not 'slow'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda: parse_arrival("poisson:rate=fast"), "poisson: rate must be a number, not 'fast'"),
        (lambda: parse_arrival("poisson:speed=1"), "expected one of rate"),
        (lambda: parse_arrival("replay:1/-3"), "replayed arrival times must be finite numbers >= 0"),
        (lambda: parse_service("fixed:slow"), "the service time must be a number"),
        (lambda: parse_service("gamma:1"), "unknown service distribution 'gamma'"),
        (lambda: parse_job_class("a:weight=heavy"), "job class a: weight must be a number, not 'heavy'"),
        (lambda: parse_job_class("a:colour=1"), "unknown key 'colour'"),
        (lambda: parse_job_class("a:transient=0.7,permanent=0.5"), "exceed 1: 0.7 + 0.5"),
        (lambda: parse_faults("crash=often"), "the rate of crash must be a number"),
        (lambda: parse_faults("pause@soon"), "expected kind@time[/slot] with numbers"),
        (lambda: parse_faults("pause@1/first"), "expected kind@time[/slot] with numbers"),
        (lambda: parse_faults("pause@1:duration=long"), "duration must be a number, not 'long'"),
        (lambda: parse_faults("meteor@1"), "unknown fault 'meteor'"),
        (lambda: Bursts(1.0, 0, 10.0), "burst size must be an int >= 1"),
        (lambda: Empirical(()), "needs at least one value"),
        (lambda: SimConfig(jobs=-1), "jobs must be >= 0, not -1"),
        (lambda: SimConfig(heartbeat=40.0), "heartbeat must be between 0 and the lock duration"),
        (lambda: SimConfig(idle_poll=0.0), "idle_poll must be positive, not 0.0"),
        (lambda: SimConfig(policy="magic"), "unknown policy 'magic'"),
    ],
)
def test_bad_workloads_faults_and_configs_raise_invalid_option_error(make: Callable[[], object], says: str) -> None:
    with pytest.raises(jqc.InvalidOptionError) as info:
        make()
    assert says in str(info.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("poisson:rate=60", Poisson(60.0)),
        ("bursts:rate=1,size=50,every=600,width=10", Bursts(1.0, 50, 600.0, 10.0)),
        ("step:rate=10,to=50,at=600", Step(10.0, 50.0, 600.0)),
        ("daily:mean=5,amp=0.8,period=3600", Daily(5.0, 0.8, 3600.0)),
        ("replay:0/1.5/1", Replay((0.0, 1.0, 1.5))),
    ],
)
def test_arrival_specs_round_trip(text: str, expected: object) -> None:
    parsed = parse_arrival(text)
    assert parsed == expected
    assert parse_arrival(parsed.spec) == parsed


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("fixed:30", Fixed(30.0)),
        ("exp:mean=30", Exponential(30.0)),
        ("lognormal:mean=30,sigma=0.5", LogNormal(30.0, 0.5)),
        ("list:1/2/4", Empirical((1.0, 2.0, 4.0))),
    ],
)
def test_service_specs_round_trip(text: str, expected: object) -> None:
    parsed = parse_service(text)
    assert parsed == expected
    assert parse_service(parsed.spec) == parsed


def test_arrival_processes_have_their_rates() -> None:
    def count(arrival: object, horizon: float) -> int:
        n = 0
        for t in arrival.times(random.Random(1)):  # type: ignore[attr-defined]
            if t > horizon:
                return n
            n += 1
        return n

    assert count(Poisson(10.0), 1000.0) == pytest.approx(10_000, rel=0.03)
    assert count(Step(1.0, 9.0, 500.0), 1000.0) == pytest.approx(5000, rel=0.05)
    assert count(Daily(4.0, 0.9, 1000.0), 1000.0) == pytest.approx(4000, rel=0.05)
    assert count(Bursts(0.0, 100, 100.0, 10.0), 999.0) == 900  # nine bursts of 100, no base rate
    assert list(Replay((3.0, 1.0)).times(random.Random(1))) == [1.0, 3.0]


def test_service_distributions_have_their_means() -> None:
    rng = random.Random(2)
    for dist in (Fixed(3.0), Exponential(3.0), LogNormal(3.0, 0.5), Empirical((1.0, 2.0, 6.0))):
        mean = statistics.fmean(dist.sample(rng) for _ in range(40_000))
        assert mean == pytest.approx(dist.mean, rel=0.03)


def test_fault_specs() -> None:
    faults = parse_faults("crash=0.001,pause=0.0005,restart@600:duration=10:persist=0,skew@0/3:by=-20")
    assert faults.crash == 0.001 and faults.pause == 0.0005
    assert [f.spec for f in faults.schedule] == ["skew@0/3:by=-20", "restart@600:duration=10:persist=0"]
    assert parse_faults(faults.spec) == faults
    with pytest.raises(ValueError):
        parse_faults("meteor=0.1")
    with pytest.raises(ValueError):
        parse_faults("crash=2")
