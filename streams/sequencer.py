"""How operator commands reach the per-partition kernels on Kafka, at a position that is recorded.

The kernels consume only `{prefix}.md`; each md partition is the exact input order of its kernels (the merge
order is recorded by the partition itself). An operator command is written to `{prefix}.commands` (key
account, by `cse command --sink kafka` or the API, through `append_operator_command`). The sequencer (an
agent of the worker app, `streams.app`) copies it into EVERY partition of the md topic: the command must
reach every kernel of its session, and a session's instruments may sit on several partitions. Where the copy
lands in a partition is where that partition's kernels apply it; a re-run after a restart and a replay read
the same partition, so they see it at the same place. Copies carry `cse-sequenced: md`, and so do the
commands `cse record` publishes itself (it writes a recorded session's commands into the md partitions in
the session's merge order, and a copy to the commands topic for readers): the sequencer forwards only
commands without that header, and only those of the `commands` log stream (the topic also carries the
order commands the kernels derive, stream `derived`, which are outputs, not inputs).

Forwarding is at least once: after a crash a command may be copied twice into a partition; the kernels feed
a (session, commands offset) once (`streams.worker.PartitionKernels`).
"""

from __future__ import annotations

from streams.kafka_io import EventProducer
from streams.serialization import H_STREAM, OutMessage

H_SEQUENCED = "cse-sequenced"
SEQUENCED = b"md"
COMMANDS_STREAM = b"commands"


def to_forward(headers: dict[str, bytes]) -> bool:
    """True for an operator command on the commands topic that no one has put into md yet."""
    return headers.get(H_STREAM) == COMMANDS_STREAM and H_SEQUENCED not in headers


def sequenced(headers: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    return [*headers, (H_SEQUENCED, SEQUENCED)]


def publish_command(producer: EventProducer, md_topic: str, commands_topic: str, message: OutMessage,
                    partitions: list[int]) -> None:  # fmt: skip
    """A recorded command (`cse record`): into each of `partitions` of md at this point of the publication,
    and once to the commands topic for readers of the log, both marked sequenced."""
    headers = sequenced(message.headers)
    for partition in partitions:
        producer.produce(md_topic, message.value, message.key, headers, partition=partition)
    producer.produce(commands_topic, message.value, message.key, headers)
