"""Queue depths and dead letters, read straight from Redis (SPEC §4.3 jobs, §9).

Dramatiq's Redis broker keeps a dead letter in `<ns>:<queue>.XQ` (sorted by time of
death) and its payload in `<ns>:<queue>.XQ.msgs`, keyed by the per-enqueue Redis id,
not by the message id operators see. Requeue follows NOTES: decode, reset `retries`,
enqueue, then remove it from the dead-letter set. Tracebacks are not in Redis; they
come from `orchestrator_job_failures`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from dramatiq import Message

from orchestrator.queues import (
    QUEUES,
    acks_key,
    dead_key,
    delayed_key,
    heartbeats_key,
    queue_key,
    worker_key,
    workers_key,
)
from orchestrator.redaction import redact


class Enqueuer(Protocol):
    def enqueue(self, message: Message[Any], *, delay: int | None = None) -> Message[Any]: ...


@dataclass(frozen=True)
class QueueDepth:
    name: str
    ready: int
    delayed: int
    in_progress: int
    dead: int


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    redis_message_id: str
    queue: str
    actor: str
    args: list[Any]
    kwargs: dict[str, Any]
    retries: int
    died_at: float


def queue_depths(client: Any, namespace: str) -> tuple[list[QueueDepth], int]:
    """Depth of every queue and the number of live worker processes.

    Only known keys are read, never a SCAN of the keyspace (which slows as Redis
    grows), in at most two pipelined round trips: first every queue's ready list (LLEN),
    delayed list (LLEN `.DQ`) and dead letters (ZCARD `.XQ`), with the Dramatiq
    consumers (the heartbeats set) and the worker processes (`workers_key`); then the
    consumers' in-flight sets (SCARD of their acks of each queue and its `.DQ`) and the
    workers' liveness keys (EXISTS). Dramatiq drops a consumer from the heartbeats set
    only once it holds no acks, so every in-flight message is counted."""
    pipe = client.pipeline(transaction=False)
    for q in QUEUES:
        pipe.llen(queue_key(namespace, q))
        pipe.llen(delayed_key(namespace, q))
        pipe.zcard(dead_key(namespace, q))
    pipe.zrange(heartbeats_key(namespace), 0, -1)
    pipe.zrange(workers_key(namespace), 0, -1)
    *counts, consumers, workers = pipe.execute()
    consumers = [_text(c) for c in consumers]
    workers = [_text(w) for w in workers]
    found: Iterator[Any] = iter(())
    if consumers or workers:
        pipe = client.pipeline(transaction=False)
        for consumer in consumers:
            for q in QUEUES:
                pipe.scard(acks_key(namespace, consumer, q))
                pipe.scard(acks_key(namespace, consumer, f"{q}.DQ"))
        for worker in workers:
            pipe.exists(worker_key(namespace, worker))
        found = iter(pipe.execute())
    in_progress = dict.fromkeys(QUEUES, 0)
    for _consumer in consumers:
        for q in QUEUES:
            in_progress[q] += int(next(found)) + int(next(found))
    alive = sum(1 for _worker in workers if next(found))
    depths = [
        QueueDepth(q, counts[i * 3], counts[i * 3 + 1], in_progress[q], counts[i * 3 + 2])
        for i, q in enumerate(QUEUES)
    ]
    # Worker processes only (the web tier's enqueues also beat Dramatiq's heartbeat set).
    return depths, alive


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _decode(queue: str, redis_id: str, raw: bytes, died_at: float) -> DeadLetter:
    message = Message.decode(raw)
    return DeadLetter(
        message_id=message.message_id,
        redis_message_id=redis_id,
        queue=queue,
        actor=message.actor_name,
        args=redact(list(message.args)),
        kwargs=redact(dict(message.kwargs)),
        retries=int(message.options.get("retries", 0)),
        died_at=died_at,
    )


def list_dead(
    client: Any, namespace: str, *, queue: str | None, limit: int, offset: int
) -> tuple[list[DeadLetter], bool]:
    """Newest first; (letters, more_after_this_page).

    Only the page is read and decoded: the newest `offset + limit + 1` ids of each
    queue's sorted set are merged by time of death, and the payloads of the page's
    entries alone are fetched — a page costs the same with 10 or 10,000 dead letters
    (up to the offset)."""
    queues = [queue] if queue else list(QUEUES)
    want = offset + limit + 1
    pipe = client.pipeline(transaction=False)
    for q in queues:
        pipe.zrevrange(dead_key(namespace, q), 0, want - 1, withscores=True)
    candidates = [
        (float(score), q, rid.decode() if isinstance(rid, bytes) else str(rid))
        for q, entries in zip(queues, pipe.execute(), strict=True)
        for rid, score in entries
    ]
    candidates.sort(key=lambda c: c[0], reverse=True)
    chosen = candidates[offset : offset + limit]
    pipe = client.pipeline(transaction=False)
    for _score, q, rid in chosen:
        pipe.hget(dead_key(namespace, q) + ".msgs", rid)
    letters = [
        _decode(q, rid, raw, score / 1000.0)
        for (score, q, rid), raw in zip(chosen, pipe.execute() if chosen else [], strict=True)
        if raw is not None
    ]
    return letters, len(candidates) > offset + limit


def find_dead(client: Any, namespace: str, message_id: str) -> DeadLetter | None:
    """A dead letter by Dramatiq message id (or by its Redis id)."""
    for q in QUEUES:
        msgs_key = dead_key(namespace, q) + ".msgs"
        raw = client.hget(msgs_key, message_id)
        if raw is not None:
            score = client.zscore(dead_key(namespace, q), message_id) or 0
            return _decode(q, message_id, raw, float(score) / 1000.0)
        for rid, raw in client.hscan_iter(msgs_key, count=500):
            # Compare ids before masking arguments: only the match is worth decoding.
            if Message.decode(raw).message_id == message_id:
                score = client.zscore(dead_key(namespace, q), rid) or 0
                return _decode(q, rid.decode(), raw, float(score) / 1000.0)
    return None


def delete_dead(client: Any, namespace: str, letter: DeadLetter) -> None:
    pipe = client.pipeline(transaction=True)
    pipe.zrem(dead_key(namespace, letter.queue), letter.redis_message_id)
    pipe.hdel(dead_key(namespace, letter.queue) + ".msgs", letter.redis_message_id)
    pipe.execute()


def requeue_dead(client: Any, namespace: str, broker: Enqueuer, letter: DeadLetter) -> None:
    """Enqueue a fresh copy (same message id, retries reset), then forget the dead one.
    Enqueue first: a crash between the two steps leaves a duplicate, never a loss."""
    raw = client.hget(dead_key(namespace, letter.queue) + ".msgs", letter.redis_message_id)
    if raw is None:
        return
    message = Message.decode(raw)
    options = {
        k: v
        for k, v in message.options.items()
        if k not in ("retries", "traceback", "redis_message_id", "eta", "requeue_timestamp")
    }
    broker.enqueue(message._replace(options=options, queue_name=letter.queue))
    delete_dead(client, namespace, letter)
