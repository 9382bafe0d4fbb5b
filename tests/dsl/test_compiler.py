"""The compiled graph: every path through the text becomes edges between stable ids."""

from __future__ import annotations

import json

import pytest

from dsl import END, JourneyInvalid, JourneySyntaxError, compile_source
from dsl import graph as g
from dsl import model as m

SAMPLE = '''journey "Lens cross-sell"
  trigger event "purchase" where event.category == "care_solution"
  exit on event "unsubscribe"
  goal "bought lenses" on event "purchase" where event.category == "lens" within 14d
  timezone "Asia/Shanghai"

  wait 2d
  if "vip" in user.tags:
    send push template "lens_intro_vip"
  else:
    split "offer test":
      50%:
        send push template "lens_intro"
      @trial_arm 40%:
        @coupon issue coupon "LENS_TRIAL" as trial
        send sms "Your code: {{ trial.code }}"
      10% control:
        pass
  wait for event "purchase" where event.category == "lens" up to 7d:
    received:
      update user.stage = "lens_buyer"
    timeout:
      @reminder send sms template "lens_reminder"
      exit
  add tag "converted"
'''


def test_flow_rejoins_after_every_branch_and_pass_compiles_to_nothing() -> None:
    compiled = compile_source(SAMPLE)
    assert compiled.start == "wait_2d"
    edges = {(a, b, label) for a, b, label in compiled.edges()}
    assert ("wait_2d", "if_vip_in_user_tags", "") in edges
    assert ("if_vip_in_user_tags", "send_push_lens_intro_vip", '"vip" in user.tags') in edges
    assert ("if_vip_in_user_tags", "split_offer_test", "else") in edges
    assert ("split_offer_test", "wait_for_purchase", "10% control") in edges  # control arm: pass
    assert ("send_push_lens_intro_vip", "wait_for_purchase", "") in edges
    assert ("coupon", "send_sms_your_code_trial_code", "") in edges
    assert ("wait_for_purchase", "update_stage", "received") in edges
    assert ("wait_for_purchase", "reminder", "timeout") in edges
    assert ("reminder", "exit", "") in edges
    assert ("exit", END, "exit") in edges
    assert ("update_stage", "add_tag_converted", "") in edges
    assert ("add_tag_converted", END, "") in edges


def test_every_target_exists_and_every_node_is_reachable() -> None:
    compiled = compile_source(SAMPLE)
    targets = {b for _, b, _ in compiled.edges()}
    assert targets <= set(compiled.nodes) | {END}
    assert set(compiled.nodes) <= targets


def test_split_arms_have_stable_ids_and_keep_their_shares() -> None:
    split = compile_source(SAMPLE).nodes["split_offer_test"]
    assert isinstance(split, g.SplitNode)
    assert [(a.id, a.percent, a.control) for a in split.arms] == [
        ("split_offer_test.a", 50.0, False),
        ("split_offer_test.trial_arm", 40.0, False),
        ("split_offer_test.control", 10.0, True),
    ]


def test_settings_and_event_index() -> None:
    compiled = compile_source(SAMPLE)
    assert compiled.event_names == {"purchase", "unsubscribe"}
    assert compiled.timezone == "Asia/Shanghai"
    assert compiled.entry.mode == "once"  # the default: never message a user twice by accident


def test_nodes_are_listed_in_document_order() -> None:
    lines = [n.line for n in compile_source(SAMPLE).nodes.values()]
    assert lines == sorted(lines)


def test_json_and_dot_outputs() -> None:
    compiled = compile_source(SAMPLE)
    data = json.loads(compiled.to_json())
    assert data["settings"]["goals"][0]["where"] == 'event.category == "lens"'
    kinds = {n["id"]: n["kind"] for n in data["nodes"]}
    assert kinds["wait_for_purchase"] == "wait_for_event"
    dot = compiled.to_dot()
    assert dot.startswith('digraph "Lens cross-sell" {')
    assert '"wait_for_purchase" -> "reminder" [label="timeout"];' in dot
    assert '"reminder" [label="reminder\\nsend"];' in dot  # one escape: Graphviz breaks the line


def test_derived_ids_survive_inserting_other_steps() -> None:
    before = compile_source(SAMPLE)
    edited = SAMPLE.replace("  wait 2d\n", "  wait 2d\n  add tag \"seen\"\n  wait 1h\n")
    after = compile_source(edited)
    assert set(before.nodes) <= set(after.nodes)


def test_compile_refuses_invalid_and_unparsable_text() -> None:
    with pytest.raises(JourneyInvalid):
        compile_source(SAMPLE.replace("10% control", "20% control"))
    with pytest.raises(JourneySyntaxError):
        compile_source(SAMPLE.replace("wait 2d", "wait 2"))


NEW_FORMS = '''journey "New forms"
  trigger schedule "30 9 * * *"
  trigger schedule "0 3 * * *" in journey zone
  goal "bought" on event "purchase" within 14d then exit
  goal "viewed" on event "product_viewed" within 7d

  @calendar wait 2 days
  @exact wait 2d
  @weeks wait 1 week
'''


def test_calendar_waits_compile_with_their_days_and_the_flag() -> None:
    nodes = compile_source(NEW_FORMS).nodes
    assert nodes["calendar"] == g.WaitNode("calendar", 7, 2 * 86_400, "exact", calendar=True)
    assert nodes["exact"] == g.WaitNode("exact", 8, 2 * 86_400, "weeks", calendar=False)
    assert nodes["weeks"] == g.WaitNode("weeks", 9, 7 * 86_400, END, calendar=True)


def test_a_schedule_without_a_zone_compiles_to_the_default_one() -> None:
    compiled = compile_source(NEW_FORMS)
    assert [(t.cron, t.zone) for t in compiled.triggers if isinstance(t, m.ScheduleTrigger)] == [
        ("30 9 * * *", m.DEFAULT_SCHEDULE_ZONE), ("0 3 * * *", "journey")]
    assert m.DEFAULT_SCHEDULE_ZONE == "user"


def test_the_json_view_shows_zones_goal_exits_and_calendar_waits() -> None:
    data = json.loads(compile_source(NEW_FORMS).to_json())
    assert [t["zone"] for t in data["settings"]["triggers"]] == ["user", "journey"]
    assert [(goal["name"], goal["then_exit"]) for goal in data["settings"]["goals"]] == [
        ("bought", True), ("viewed", False)]
    assert {n["id"]: n["calendar"] for n in data["nodes"]} == {"calendar": True, "exact": False, "weeks": True}
