"""Issue 10, events and output: events without a title, repeated event ids, and protocol
references in `--reference-mode rule`."""

from harness import T0, Harness, directive, event, rule


def test_an_event_without_title_correlates_and_the_alarm_title_is_the_directives():
    d = directive(1, [rule(1), rule(2, timeout=60, **{"from": ":1"})],
                  name="Untitled source SRC_IP", priority=5)
    h = Harness([d])
    h.feed(event("1", T0, "10.0.0.1", "10.0.0.2", title=None),  # null: the key is absent
           event("2", T0 + 1, "10.0.0.1", "10.0.0.2", title=""))
    assert h.links == [("b1", 1, "1"), ("b1", 2, "2")]
    assert [a["title"] for a in h.alarms] == ["Untitled source 10.0.0.1"] * 2
