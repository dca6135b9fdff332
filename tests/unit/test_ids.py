"""Row ids (`store.ids.new_id`): UUIDv7, rising with time, unguessable."""

import time
import uuid

from telportal.store.ids import new_id


def test_an_id_is_a_version_7_uuid_with_the_time_of_its_making() -> None:
    before = time.time_ns() // 1_000_000
    made = new_id()
    after = time.time_ns() // 1_000_000
    parsed = uuid.UUID(made)
    assert str(parsed) == made  # canonical, lower-case form
    assert parsed.version == 7 and parsed.variant == uuid.RFC_4122
    assert before <= parsed.int >> 80 <= after


def test_ids_made_later_sort_after_and_never_repeat() -> None:
    first = [new_id() for _ in range(1000)]
    time.sleep(0.002)
    second = [new_id() for _ in range(1000)]
    assert max(first) < min(second)  # text order is time order (insert at the right end)
    assert len(set(first + second)) == 2000
    # 74 random bits an id: within one millisecond the rest differs, not a counter.
    same_ms = [i for i in first if i[:13] == first[0][:13]]
    assert len({i[15:18] + i[19:] for i in same_ms}) == len(same_ms)
