from telportal.net import Peer, Transport
from telportal.net.table import ConnectionTable


def peer(host: str = "192.0.2.1", port: int = 5060) -> Peer:
    return Peer(Transport.TCP, host, port)


def test_inbound_connections_are_limited_in_total_and_per_host() -> None:
    table: ConnectionTable[str] = ConnectionTable(max_inbound=3, max_inbound_per_host=2)
    table.add(1, peer("192.0.2.1", 1000), "a", inbound=True)
    table.add(2, peer("192.0.2.1", 1001), "b", inbound=True)
    refusal = table.refusal("192.0.2.1")
    assert refusal is not None
    assert "192.0.2.1" in refusal
    assert table.refusal("192.0.2.2") is None
    table.add(3, peer("192.0.2.2", 1000), "c", inbound=True)
    assert table.refusal("192.0.2.3") is not None  # the total
    table.remove(1)
    assert table.refusal("192.0.2.1") is None


def test_outbound_connections_do_not_count_against_the_limits() -> None:
    table: ConnectionTable[str] = ConnectionTable(max_inbound=1, max_inbound_per_host=1)
    table.add(1, peer(), "out", inbound=False)
    assert table.refusal("192.0.2.1") is None


def test_find_gives_the_newest_connection_to_an_address() -> None:
    table: ConnectionTable[str] = ConnectionTable(10, 10)
    table.add(1, peer(), "old", inbound=True)
    table.add(2, peer(), "new", inbound=False)
    assert table.find(peer()) == "new"
    table.remove(2)
    assert table.find(peer()) == "old"
    table.remove(1)
    assert table.find(peer()) is None
    assert len(table) == 0


def test_a_dialled_connection_is_found_by_the_name_it_was_dialled_by() -> None:
    table: ConnectionTable[str] = ConnectionTable(10, 10)
    alias = Peer(Transport.TLS, "proxy.example.com", 5061)
    table.add(7, Peer(Transport.TLS, "192.0.2.9", 5061), "c", inbound=False, aliases=(alias,))
    assert table.find(alias) == "c"
    assert table.get(7) == "c"
    assert table.count(Transport.TLS) == 1
    assert table.remove(7) == "c"
    assert table.find(alias) is None
    assert table.remove(7) is None
