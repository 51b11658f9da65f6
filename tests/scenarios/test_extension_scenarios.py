"""The directive extensions in the engine (docs/extensions.md): absence stages, sticky-different
on several fields, references to another field."""

from __future__ import annotations

from harness import T0, Harness, directive, event, rule

from dsiem_sql.engine.state import EXPIRED, FINISHED, LIVE

X = "ExtendedPluginRule"
HOME = "10.0.0.1"  # asset value 5
OUTSIDE = "203.0.113.9"


def absence(timeout: int = 60, reliability: int = 5, then: list | None = None,
            all_rules_always_active: bool = False, **options) -> Harness:
    """Priority 4; stage 1: plugin 1337 SID 1 (risk 4 x 1 x 5 / 25 = 0: no alarm); stage 2,
    absent: SID 2 from the same source; `then`: more stages."""
    rules = [rule(1, type=X),
             rule(2, type=X, absent=True, plugin_sid=[2], timeout=timeout,
                  reliability=reliability, **{"from": ":1"}),
             *(then or [])]
    return Harness([directive(1, rules, priority=4,
                              all_rules_always_active=all_rules_always_active)], **options)


def only(h: Harness):
    [b] = h.changes.backlogs.values()
    return b


def test_an_absence_stage_completes_after_its_deadline_without_links():
    h = absence()
    h.feed(event("login", T0, OUTSIDE, HOME))
    assert h.engine.next_absence() == T0 + 60
    h.sweep(T0 + 60)  # the deadline itself: still waiting
    assert only(h).state == LIVE and h.alarms == []
    h.sweep(T0 + 61)
    b = only(h)
    assert (b.state, b.current_stage, b.current.status) == (FINISHED, 2, "finished")
    assert (b.current.start_time, b.current.end_time) == (T0, T0 + 60)
    [alarm] = h.alarms
    assert alarm["risk"] == 4 * 5 * 5 // 25
    assert [(r["stage"], r["status"], r.get("absent")) for r in alarm["rules"]] == [
        (1, "finished", None), (2, "finished", True)]
    assert alarm["rules"][1]["end_time"] == T0 + 60
    assert h.links == [("b1", 1, "login")]  # none for the absence itself
    assert h.engine.next_absence() is None


def test_a_matching_event_in_time_ends_the_backlog_without_an_alarm():
    h = absence()
    h.feed(event("login", T0, OUTSIDE, HOME))
    h.feed(event("other-source", T0 + 10, "198.51.100.1", HOME, plugin_sid=2))  # not `:1`
    assert only(h).state == LIVE
    h.feed(event("access", T0 + 60, OUTSIDE, HOME, plugin_sid=2))  # at the deadline: in time
    b = only(h)
    assert (b.state, b.current.status, b.current.end_time, b.ended_time) == (
        EXPIRED, "cancelled", T0 + 60, T0 + 60)
    assert h.alarms == [] and h.links == [("b1", 1, "login")]
    assert h.engine.stats.expired == 1


def test_an_alarm_whose_absence_is_broken_gets_a_last_line_saying_so():
    # stage 1 already raises the alarm (priority 5 x reliability 5 x value 5 / 25 = 5)
    h = Harness([directive(1, [
        rule(1, type=X, reliability=5),
        rule(2, type=X, absent=True, plugin_sid=[2], timeout=60, **{"from": ":1"})],
        priority=5)])
    h.feed(event("login", T0, OUTSIDE, HOME))
    h.feed(event("access", T0 + 5, OUTSIDE, HOME, plugin_sid=2))
    assert [[r.get("status") for r in a["rules"]] for a in h.alarms] == [
        ["finished", None], ["finished", "cancelled"]]


def test_an_out_of_order_event_does_not_break_the_absence():
    h = absence(then=None)
    h.feed(event("login", T0 + 100, OUTSIDE, HOME))
    h.feed(event("late", T0 + 50, OUTSIDE, HOME, plugin_sid=2))  # before stage 1 ended
    assert only(h).state == LIVE
    h.sweep(T0 + 161)
    assert only(h).state == FINISHED


def test_the_minimum_alarm_lifetime_does_not_delay_an_absence_but_delays_later_stages():
    h = absence(then=[rule(3, type=X, plugin_sid=[3], timeout=30, **{"from": ":1"})],
                min_alarm_lifetime=5)
    h.feed(event("login", T0, OUTSIDE, HOME))
    h.sweep(T0 + 61)
    b = only(h)
    assert (b.state, b.current_stage, b.current.start_time) == (LIVE, 3, T0 + 60)
    h.sweep(T0 + 60 + 30 + 300)  # stage 3's deadline + 5 minutes: not yet past
    assert only(h).state == LIVE
    h.sweep(T0 + 60 + 30 + 301)
    assert (only(h).state, only(h).current.status) == (EXPIRED, "timeout")


def test_an_event_after_the_deadline_completes_the_absence_before_the_sweep_does():
    # serve: the wall clock passed the deadline, the 1 s sweep has not run yet
    now = [T0]
    h = absence(then=[rule(3, type=X, plugin_sid=[2, 3], timeout=30, **{"from": ":1"})])
    h.engine.clock = lambda: now[0]
    h.engine.process(event("login", T0, OUTSIDE, HOME), into=h.changes)
    now[0] = T0 + 61
    h.engine.process(event("access", T0 + 61, OUTSIDE, HOME, plugin_sid=2), into=h.changes)
    b = only(h)
    assert [s.status for s in b.stages] == ["finished", "finished", "finished"]
    assert b.state == FINISHED
    assert list(b.stages[2].event_ids) == ["access"]  # it went on to stage 3


def test_all_rules_always_active_earlier_stages_take_events_while_the_absence_waits():
    h = absence(all_rules_always_active=True)
    h.feed(event("login", T0, OUTSIDE, HOME))
    h.feed(event("login-again", T0 + 5, OUTSIDE, HOME))
    assert h.stage_events("b1") == [["login", "login-again"], []]
    assert only(h).state == LIVE


def test_several_sticky_fields_count_only_new_combinations():
    h = Harness([directive(1, [
        rule(1, type=X, to=HOME),
        rule(2, type=X, occurrence=4, timeout=60, to=":1", sticky_different="SRC_IP,DST_PORT"),
    ])])
    h.feed(event("open", T0, "198.51.100.1", HOME, dst_port=22))
    for i, (src, port) in enumerate([("198.51.100.1", 22), ("198.51.100.1", 22),
                                     ("198.51.100.2", 22), ("198.51.100.1", 23),
                                     ("198.51.100.2", 23), ("198.51.100.2", 23)]):
        h.feed(event(f"e{i}", T0 + 1 + i, src, HOME, dst_port=port))
    assert h.stage_events("b1") == [["open"], ["e0", "e2", "e3", "e4"]]
    b = h.changes.backlogs["b1"]
    assert b.state == FINISHED  # (e5, a repeat, then opens a backlog of its own)
    assert list(b.stages[1].sticky) == [("198.51.100.1", 22), ("198.51.100.2", 22),
                                              ("198.51.100.1", 23), ("198.51.100.2", 23)]


def test_a_reference_to_another_field_makes_the_victim_the_attacker():
    h = Harness([directive(1, [
        rule(1, type=X, to="HOME_NET"),
        rule(2, type=X, plugin_sid=[2], timeout=60, to="!HOME_NET", **{"from": ":1.to"}),
    ], priority=5)])
    h.feed(event("attack", T0, OUTSIDE, HOME))
    h.feed(event("attacker-again", T0 + 1, OUTSIDE, "198.51.100.7", plugin_sid=2))
    assert only(h).state == LIVE
    h.feed(event("victim-out", T0 + 2, HOME, "198.51.100.7", plugin_sid=2))
    b = only(h)
    assert b.state == FINISHED and h.stage_events("b1") == [["attack"], ["victim-out"]]
    assert h.alarms[-1]["rules"][1]["from"] == HOME  # the value it resolved to


def test_a_reference_to_another_custom_data_field():
    h = Harness([directive(1, [
        rule(1, type=X),
        rule(2, type=X, plugin_sid=[2], timeout=60, custom_data1=":1.custom_data2"),
    ])])
    h.feed(event("a", T0, OUTSIDE, HOME, custom_data1="alice", custom_data2="bob"))
    h.feed(event("b", T0 + 1, OUTSIDE, HOME, plugin_sid=2, custom_data1="alice"))
    assert only(h).state == LIVE
    h.feed(event("c", T0 + 2, OUTSIDE, HOME, plugin_sid=2, custom_data1="bob"))
    assert only(h).state == FINISHED


def test_rule_mode_copies_the_other_field_of_the_referenced_rule():
    # Go's resolution at backlog creation: stage 1's `to` text, or the event's value for a
    # keyword
    for to, expected in (("HOME_NET", HOME), ("10.0.0.0/8", "10.0.0.0/8")):
        h = Harness([directive(1, [
            rule(1, type=X, to=to),
            rule(2, type=X, plugin_sid=[2], timeout=60, **{"from": ":1.to"}),
        ])], reference_mode="rule")
        h.feed(event("attack", T0, OUTSIDE, HOME))
        assert only(h).stages[1].rule.from_ == expected


def test_an_event_stamped_after_the_deadline_does_not_end_the_backlog():
    # serve: an event from a sensor whose clock runs ahead of the engine's
    now = [T0]
    h = absence()
    h.engine.clock = lambda: now[0]
    h.engine.process(event("login", T0, OUTSIDE, HOME), into=h.changes)
    now[0] = T0 + 30
    h.engine.process(event("access", T0 + 90, OUTSIDE, HOME, plugin_sid=2), into=h.changes)
    assert only(h).state == LIVE
    now[0] = T0 + 61
    h.engine.expire(into=h.changes)
    assert (only(h).state, only(h).current.status) == (FINISHED, "finished")
