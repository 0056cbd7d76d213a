"""The text forms of workloads on the command line: ``--arrival``, ``--service`` and ``--mix``.

Each parser reads what the ``spec`` of an arrival process, a service-time distribution or a job
class (:mod:`jqc.sim.workload`) writes, and raises :class:`~jqc.errors.InvalidOptionError` with the
offending text for anything else.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from jqc.errors import InvalidOptionError
from jqc.sim.workload import (
    Arrival,
    Bursts,
    Daily,
    Empirical,
    Exponential,
    Fixed,
    JobClass,
    LogNormal,
    Poisson,
    Replay,
    Service,
    Step,
)

__all__ = ["parse_arrival", "parse_job_class", "parse_service"]


def _split(text: str) -> tuple[str, str]:
    kind, _, body = text.strip().partition(":")
    return kind.strip().lower(), body.strip()


def _params(body: str, allowed: Sequence[str], what: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in filter(None, (p.strip() for p in body.split(","))):
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq or key not in allowed:
            raise InvalidOptionError(f"{what}: expected one of {', '.join(allowed)} as key=value, not {item!r}")
        out[key] = _number(value, what, key)
    return out


def _number(value: str, what: str, key: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise InvalidOptionError(f"{what}: {key} must be a number, not {value!r}") from None


def _numbers(body: str, what: str) -> tuple[tuple[float, ...], str | None]:
    """Numbers given inline (separated by / or whitespace) or read from a file, one or more a line."""
    source = None
    text = body
    if body and not all(ch in "0123456789.eE+-/ " for ch in body):
        source = body
        try:
            text = Path(body).read_text()
        except OSError as exc:
            raise InvalidOptionError(f"{what}: cannot read {body!r}: {exc}") from None
    try:
        values = tuple(float(x) for x in text.replace("/", " ").replace(",", " ").split())
    except ValueError:
        raise InvalidOptionError(f"{what}: expected numbers, in {body!r}") from None
    return values, source


def parse_arrival(text: str) -> Arrival:
    """``poisson:rate=R`` | ``bursts:rate=R,size=N,every=S[,width=W][,first=T]`` |
    ``step:rate=R,to=R2,at=T`` | ``daily:mean=R[,amp=A][,period=P][,phase=F]`` | ``replay:FILE|t1/t2/...``."""
    kind, body = _split(text)
    if kind == "poisson":
        p = _params(body, ("rate",), "poisson")
        return Poisson(p.get("rate", 1.0))
    if kind in ("burst", "bursts"):
        p = _params(body, ("rate", "size", "every", "width", "first"), "bursts")
        return Bursts(
            p.get("rate", 0.0), int(p.get("size", 100)), p.get("every", 600.0), p.get("width", 0.0), p.get("first")
        )
    if kind == "step":
        p = _params(body, ("rate", "to", "at"), "step")
        return Step(p.get("rate", 1.0), p.get("to", 2.0), p.get("at", 600.0))
    if kind == "daily":
        p = _params(body, ("mean", "amp", "period", "phase"), "daily")
        return Daily(p.get("mean", 1.0), p.get("amp", 0.5), p.get("period", 86400.0), p.get("phase", 0.0))
    if kind == "replay":
        values, source = _numbers(body, "replay")
        return Replay(values, source)
    raise InvalidOptionError(f"unknown arrival process {kind!r}: use poisson, bursts, step, daily or replay")


def parse_service(text: str) -> Service:
    """``fixed:S`` | ``exp:mean=S`` | ``lognormal:mean=S,sigma=X`` | ``list:FILE|s1/s2/...``."""
    kind, body = _split(text.replace(";", ","))
    if kind == "fixed":
        if "=" in body:
            return Fixed(_params(body, ("value", "mean"), "fixed").popitem()[1])
        return Fixed(_number(body or "1", "fixed", "the service time"))
    if kind in ("exp", "exponential"):
        return Exponential(_params(body, ("mean",), "exponential").get("mean", 1.0))
    if kind == "lognormal":
        p = _params(body, ("mean", "sigma"), "lognormal")
        return LogNormal(p.get("mean", 1.0), p.get("sigma", 0.5))
    if kind in ("list", "empirical"):
        values, source = _numbers(body, "list")
        return Empirical(values, source)
    raise InvalidOptionError(f"unknown service distribution {kind!r}: use fixed, exp, lognormal or list")


def parse_job_class(text: str) -> JobClass:
    """``NAME:weight=W,priority=P,delay=S,attempts=N,backoff=S,exponential=1,transient=P,
    permanent=P,service=KIND:k=v;k=v`` (every key optional)."""
    name, _, body = text.strip().partition(":")
    if not name:
        raise InvalidOptionError(f"a job class needs a name: {text!r}")
    service = None
    kwargs: dict[str, float] = {}
    for item in filter(None, (p.strip() for p in body.split(","))):
        key, eq, value = item.partition("=")
        if not eq:
            raise InvalidOptionError(f"job class {name}: expected key=value, not {item!r}")
        if key == "service":
            service = parse_service(value)
            continue
        if key not in ("weight", "priority", "delay", "attempts", "backoff", "exponential", "transient", "permanent"):
            raise InvalidOptionError(f"job class {name}: unknown key {key!r}")
        kwargs[key] = _number(value, f"job class {name}", key)
    return JobClass(
        name=name,
        weight=kwargs.get("weight", 1.0),
        priority=int(kwargs.get("priority", 0)),
        delay=kwargs.get("delay", 0.0),
        attempts=int(kwargs.get("attempts", 1)),
        backoff=kwargs.get("backoff", 0.0),
        exponential=bool(kwargs.get("exponential", 0.0)),
        transient=kwargs.get("transient", 0.0),
        permanent=kwargs.get("permanent", 0.0),
        service=service,
    )
