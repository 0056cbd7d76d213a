import jqc


def test_add_claim_complete_roundtrip(queue: jqc.Queue) -> None:
    job = queue.add("thumbnail", {"photoId": "123"})
    got = queue.claim("w1")
    assert got.status == jqc.Code.OK
    (claimed,) = got.jobs
    assert claimed.id == job.id and claimed.job.data == {"photoId": "123"}
    queue.complete(claimed, {"ok": True})
    stored = queue.get_job(job.id)
    assert stored is not None and stored.state == jqc.JobState.COMPLETED and stored.result == {"ok": True}


async def test_async_roundtrip(aqueue: jqc.AsyncQueue) -> None:
    job = await aqueue.add("thumbnail", {"photoId": "9"})
    got = await aqueue.claim("w1")
    await aqueue.complete(got.jobs[0], 1)
    stored = await aqueue.get_job(job.id)
    assert stored is not None and stored.result == 1
