"""A marketer's hands: build a journey in the builder by clicks, from its model.

Given a parsed journey (an example file), this drives the real builder in a real browser the
way a person would: the "+" on an edge and a palette choice for each step, the side panel's
controls for its fields, the condition editor's rows for every condition, "+ branch" for
arms, the settings panel for triggers, audience, exits, goals and manners, and the publish
review. It never types into the journey text or into an expression field: conditions,
profile updates and webhook bodies are built from rows and typed values. Typing is kept for
what a marketer types anyway: names, message texts, numbers, times.

What to click for a condition, an update's value or a webhook body is read from the builder's
own form models (`condition_rows`, `value_rows`): those models are tested against the DSL on
their own; this drives them through the page, and the test compares the journey the clicks
made with the file.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from builder_ui import condition_rows as cr
from builder_ui import value_rows as vr
from dsl import model as m
from dsl.durations import DAY, format_duration
from dsl.formatter import format_expr

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

StepPath = tuple[int, ...]
PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_.]*)\s*(?:\|\s*default\('([^']*)'\)\s*)?\}\}")


def placeholders(text: str) -> Iterator[tuple[str, str, str]]:
    """(words before, placeholder code, its "if none" words) along a message's text."""
    at = 0
    for found in PLACEHOLDER.finditer(text):
        yield text[at:found.start()], found.group(1), found.group(2) or ""
        at = found.end()
    yield text[at:], "", ""


def encode(path: StepPath) -> str:
    return ".".join(map(str, path))


class JourneyByClicks:
    def __init__(self, page: Page, expect: object) -> None:
        self.page = page
        self.expect = expect  # playwright.sync_api.expect, passed in so this module imports without playwright

    # ------------------------------------------------------------------ helpers

    def rev(self) -> str:
        return self.page.locator("#rev").get_attribute("value") or ""

    def saved_after(self, click: Locator) -> None:
        """Click, and wait until the draft's text has changed (a new revision on the page)."""
        before = self.rev()
        click.click()
        self.expect(self.page.locator("#rev")).not_to_have_attribute("value", before)  # type: ignore[attr-defined]

    def node(self, path: StepPath) -> Locator:
        return self.page.locator(f'.step > .node[data-path="{encode(path)}"]')

    def open_step(self, path: StepPath) -> Locator:
        form = self.page.locator(f'#step-form[data-path="{encode(path)}"]')
        if not form.is_visible():
            self.node(path).click()
        self.expect(form).to_be_visible()  # type: ignore[attr-defined]
        return form

    # ------------------------------------------------------------------ the journey

    def create(self, name: str) -> None:
        self.page.goto("/builder/")
        self.page.get_by_label("New journey").fill(name)
        self.page.get_by_role("button", name="Create").click()
        confirm = self.page.locator('button[name="confirmed"]')
        if confirm.count():
            confirm.click()
        self.expect(self.page.locator(".journey-name")).to_have_text(name)  # type: ignore[attr-defined]

    def build(self, journey: m.Journey) -> None:
        self.create(journey.name)
        self.settings(journey)
        self.block(journey.steps, ())

    def publish(self) -> None:
        """Publish through the review: read it, then confirm."""
        self.page.locator("#publish").click()
        review = self.page.locator("#publish-review")
        self.expect(review).to_be_visible()  # type: ignore[attr-defined]
        self.expect(review.locator(".review-problem")).to_have_count(0)  # type: ignore[attr-defined]
        review.locator("button#confirm-publish").click()

    # ------------------------------------------------------------------ steps

    def block(self, steps: tuple[m.Step, ...], block: StepPath) -> None:
        index = 0
        for step in steps:
            if isinstance(step, m.Pass):
                continue  # a lane of only `pass` is an empty lane, which is what a new branch is
            self.insert(step, block, index)
            index += 1

    def insert(self, step: m.Step, block: StepPath, index: int) -> None:
        from builder_ui.palette import kind_of

        self.page.locator(f'.slot[data-block="{encode(block)}"][data-index="{index}"] > .plus').click()
        before = self.rev()
        self.page.locator(f'.palette [data-kind="{kind_of(step).key}"]').click()
        self.expect(self.page.locator("#rev")).not_to_have_attribute("value", before)  # type: ignore[attr-defined]
        path = (*block, index)
        self.arms(step, path)
        form = self.open_step(path)
        form.locator('[name="label"]').fill(step.label or "")
        self.fill(step, form, path)
        self.saved_after(form.locator("#apply-step"))
        for which, steps in enumerate(m.child_blocks(step)):
            self.block(steps, (*path, which))

    def arms(self, step: m.Step, path: StepPath) -> None:
        """As many branches as the step has, with "+ branch": a new split has two arms, a new
        if one arm and an else ("+ branch" adds an else-if; the form's checkbox keeps the else)."""
        if isinstance(step, m.Split):
            adds = len(step.arms) - 2
        elif isinstance(step, m.If):
            adds = len(step.arms) - 1
        else:
            return
        add = self.page.locator(f'.step[data-path="{encode(path)}"] > .branches > .add-branch')
        form = self.page.locator(f'#step-form[data-path="{encode(path)}"]')
        for _ in range(adds):
            self.expect(form).to_be_visible()  # type: ignore[attr-defined]
            form.evaluate("form => { form.dataset.drawnBefore = 'yes'; }")
            self.saved_after(add)
            # The open form is drawn again with the new branch.
            self.expect(self.page.locator(f'#step-form[data-path="{encode(path)}"]:not([data-drawn-before])')
                        ).to_be_visible()  # type: ignore[attr-defined]

    def fill(self, step: m.Step, form: Locator, path: StepPath) -> None:
        match step:
            case m.Wait(seconds=seconds, calendar=calendar):
                form.locator('select[name="mode"]').select_option("for")
                form.locator('select[name="count"]').select_option("calendar" if calendar else "exact")
                form.locator('[name="duration"]').fill(f"{seconds // DAY}" if calendar else format_duration(seconds))
            case m.WaitUntil(time=time, weekday=weekday):
                form.locator('select[name="mode"]').select_option("until")
                form.locator('[name="time"]').fill(str(time))
                form.locator('select[name="weekday"]').select_option(weekday or "")
            case m.WaitForEvent(event=event, where=where, timeout_seconds=timeout):
                self.event(form, "event", event)
                self.condition(form, "where", where)
                form.locator('[name="timeout"]').fill(format_duration(timeout))
            case m.If(arms=arms, otherwise=otherwise):
                for i, arm in enumerate(arms):
                    self.condition(form, f"condition_{i}", arm.condition)
                box = form.locator('[name="has_else"]')
                box.set_checked(otherwise is not None)
            case m.Split(name=name, arms=arms):
                form.locator('[name="name"]').fill(name)
                for i, arm in enumerate(arms):
                    form.locator(f'[name="percent_{i}"]').fill(f"{arm.percent:g}")
                    form.locator(f'[name="arm_label_{i}"]').fill(arm.label or "")
                control = next((str(i) for i, a in enumerate(arms) if a.control), "")
                form.locator(f'input[name="control"][value="{control}"]').check()
            case m.Send(text=text, template=template, title=title):
                form.locator('select[name="content"]').select_option("template" if template else "text")
                if template:
                    form.locator('select[name="template"]').select_option(template)
                else:
                    self.message(form, text or "")
                if step.channel == "push":
                    form.locator('[name="title"]').fill(title or "")
            case m.IssueCoupon(pool=pool, result=result):
                form.locator('select[name="pool"]').select_option(pool)
                form.locator('[name="result"]').fill(result or "")
            case m.CallWebhook(url=url, body=body, result=result):
                form.locator('[name="url"]').fill(url)
                self.body(form, body)
                form.locator('[name="result"]').fill(result or "")
            case m.UpdateProfile():
                self.update(form, step)
            case m.Tag(action=action, tag=tag):
                form.locator('select[name="action"]').select_option(action)
                form.locator('[name="tag"]').fill(tag)
            case _:
                pass

    # ------------------------------------------------------------------ conditions

    def condition(self, form: Locator, name: str, expr: m.Expr | None) -> None:
        """Build `expr` in the condition editor NAME from rows: a field, a test and a value per
        row, "+ condition" and "+ group" for more, "all"/"any" for the joins."""
        wanted = format_expr(expr) if expr is not None else ""
        editor = form.locator(f'.cond-editor[data-name="{name}"]')
        if editor.locator(f'input[name="{name}"]').input_value() == wanted:
            return  # already so (the settings are filled in rounds)
        group = cr.rows_of(expr)
        assert group is not None, f"rows cannot say {wanted}"
        assert editor.get_attribute("data-mode") == "rows", f"{name} opened as text"
        self.group(editor, name, cr.TOP, group)

    def redrawn(self, editor: Locator, act: Callable[[], object]) -> None:
        """Do what redraws the editor on the server, and wait for the new drawing."""
        drawn = editor.get_attribute("data-drawn") or ""
        act()
        self.expect(editor).not_to_have_attribute("data-drawn", drawn)  # type: ignore[attr-defined]

    def pick(self, editor: Locator, control: Locator, value: str) -> None:
        """Choose in a select that redraws the editor when its choice changes."""
        if control.input_value() != value:
            self.redrawn(editor, lambda: control.select_option(value))

    def group(self, editor: Locator, name: str, node: str, group: cr.Group) -> None:
        editor.locator(f'select[name="{name}~{node}~join"]').select_option(group.join)
        for i, item in enumerate(group.items):
            child = f"{node}.{i}"
            present = editor.locator(f'[data-node="{child}"]')
            buttons = editor.locator(f'.cond-group[data-node="{node}"] > .cond-buttons')
            if isinstance(item, cr.Group):
                if present.count() and "cond-row" in (present.get_attribute("class") or ""):
                    self.redrawn(editor, editor.locator(f'.cond-row[data-node="{child}"] > .cond-remove').click)
                if not editor.locator(f'.cond-group[data-node="{child}"]').count():
                    self.redrawn(editor, buttons.locator("> .cond-add-group").click)
                self.group(editor, name, child, item)
            else:
                if not present.count():
                    self.redrawn(editor, buttons.locator("> .cond-add").click)
                self.row(editor, f"{name}~{child}~", item)

    def row(self, editor: Locator, n: str, row: cr.Row) -> None:
        self.pick(editor, editor.locator(f'select[name="{n}field"]'), row.field)
        if row.field == cr.HISTORY:
            self.pick(editor, editor.locator(f'select[name="{n}event"]'), row.event)
            if row.where is not None:
                self.test(editor, f"{n}w", row.where)
            editor.locator(f'select[name="{n}window"]').select_option(row.window)
            if row.window == "within":
                editor.locator(f'[name="{n}days"]').fill(row.days)
            editor.locator(f'select[name="{n}count_op"]').select_option(row.count_op)
            if row.count_op != "none":  # "none" hides the number
                editor.locator(f'[name="{n}count"]').fill(row.count)
        else:
            self.test(editor, n, row)

    def test(self, editor: Locator, n: str, row: cr.Row) -> None:
        """A field, its test and its value (a row's, or the event's test in a history row)."""
        self.pick(editor, editor.locator(f'select[name="{n}field"]'), row.field)
        self.pick(editor, editor.locator(f'select[name="{n}op"]'), row.op)
        value = editor.locator(f'[name="{n}value"]')
        if value.count():
            self.choose_in(value, row.value)

    def choose_in(self, control: Locator, value: str) -> None:
        if control.evaluate("element => element.tagName") == "SELECT":
            control.select_option(value)
        else:
            control.fill(value)

    def event(self, form: Locator, field: str, event: str) -> None:
        """Type an event's name; the condition editors that follow it redraw with its properties."""
        box = form.locator(f'[name="{field}"]')
        if box.input_value() == event:
            return
        editors = form.locator(f'.cond-editor[data-event-field="{field}"]')
        drawn = [editors.nth(i).get_attribute("data-drawn") or "" for i in range(editors.count())]
        box.fill(event)
        box.dispatch_event("change")
        for i, before in enumerate(drawn):
            self.expect(editors.nth(i)).not_to_have_attribute("data-drawn", before)  # type: ignore[attr-defined]

    # ------------------------------------------------------------------ messages, updates, bodies

    def message(self, form: Locator, text: str) -> None:
        """Type the words, and insert each placeholder from the "Insert…" menu (with its "if
        the profile has none" words)."""
        area = form.locator('textarea[name="text"]')
        area.fill("")
        area.focus()
        for words, code, default in placeholders(text):
            if words:
                self.page.keyboard.insert_text(words)
            if code:
                menu = form.locator("select.placeholder-menu")
                form.locator(".placeholder-default").fill(default)
                if menu.locator(f'option[value="{code}"]').count():
                    menu.select_option(code)
                else:  # a reply's field: named in the box, then "a field you name…"
                    result, _, named = code.partition(".")
                    form.locator(".placeholder-field").fill(named)
                    menu.select_option(f"{result}.*")
        self.expect(area).to_have_value(text)  # type: ignore[attr-defined]

    def update(self, form: Locator, step: m.UpdateProfile) -> None:
        name = ".".join(step.path.parts[1:])
        pick = form.locator("select.upd-field")
        if pick.locator(f'option[value="{name}"]').count():
            pick.select_option(name)
        else:
            pick.select_option(vr.OTHER)
            form.locator(".upd-field-other").fill(name)
        form.locator("select.upd-op").select_option(step.op)
        typed = vr.typed_of(step.value)
        form.locator("select.upd-kind").select_option(typed.kind)
        self.choose_in(form.locator(".upd-value:visible"), typed.value)

    def body(self, form: Locator, body: m.Expr | None) -> None:
        """The body's rows, each added with the "+" of the row (or group, or list) holding it."""
        if body is None:
            return
        rows = vr.rows_of(body)
        assert rows is not None, f"rows cannot say {format_expr(body)}"
        editor = form.locator(".body-editor")
        parents: list[int] = []  # the index of the open group or list at each depth
        for i, row in enumerate(rows):
            del parents[row.depth:]
            which = {"group": ".body-add-group", "list": ".body-add-list"}.get(row.kind, ".body-add")
            scope = editor.locator(".body-row").nth(parents[-1]) if parents else editor.locator("> .body-buttons")
            scope.locator(f"> {which}").click()
            added = editor.locator(".body-row").nth(i)
            if row.key:
                added.locator(".body-key").fill(row.key)
            if row.kind in ("group", "list"):
                parents.append(i)
                continue
            added.locator("select.body-kind").select_option(row.kind)
            self.choose_in(added.locator(".body-value:visible"), row.value)

    # ------------------------------------------------------------------ settings

    def choose(self, form: Locator, name: str, value: str) -> None:
        """Pick `value` in the control `name`, a select or (a free-form value) an input."""
        control = form.locator(f'[name="{name}"]')
        if control.evaluate("element => element.tagName") == "SELECT":
            control.select_option(value)
        else:
            control.fill(value)

    def settings(self, journey: m.Journey) -> None:
        """The settings panel shows each repeated setting's rows plus one blank row, so a
        journey with two goals takes two rounds: fill what is shown, apply, open again."""
        rounds = max(len(journey.triggers), len(journey.exits), len(journey.goals), len(journey.caps), 1)
        for _ in range(rounds):
            self.page.locator(".start-node").click()
            form = self.page.locator("#settings-form")
            self.expect(form).to_be_visible()  # type: ignore[attr-defined]
            self.fill_settings(form, journey)
            with self.page.expect_response(lambda r: r.url.endswith("/settings") and r.request.method == "POST"):
                form.locator("#apply-settings").click()

    def shown(self, form: Locator, name: str) -> bool:
        return form.locator(f'[name="{name}"]').count() > 0

    def fill_settings(self, form: Locator, journey: m.Journey) -> None:
        for i, trigger in enumerate(journey.triggers):
            if self.shown(form, f"trigger_kind_{i}"):
                self.trigger(form, i, trigger)
        self.condition(form, "audience", journey.audience.condition if journey.audience else None)
        entry = journey.entry or m.Entry("once")
        form.locator('select[name="entry"]').select_option(entry.mode)
        if entry.every_seconds:
            form.locator('[name="entry_every"]').fill(format_duration(entry.every_seconds))
        for i, rule in enumerate(journey.exits):
            if not self.shown(form, f"exit_kind_{i}"):
                continue
            if isinstance(rule, m.ExitOnEvent):
                form.locator(f'select[name="exit_kind_{i}"]').select_option("event")
                self.event(form, f"exit_event_{i}", rule.event)
                self.condition(form, f"exit_where_{i}", rule.where)
            else:
                form.locator(f'select[name="exit_kind_{i}"]').select_option("when")
                self.condition(form, f"exit_where_{i}", rule.condition)
        for i, goal in enumerate(journey.goals):
            if not self.shown(form, f"goal_name_{i}"):
                continue
            form.locator(f'[name="goal_name_{i}"]').fill(goal.name)
            form.locator(f'select[name="goal_kind_{i}"]').select_option("event" if goal.event else "when")
            if goal.event:
                self.event(form, f"goal_event_{i}", goal.event)
            self.condition(form, f"goal_where_{i}", goal.where)
            form.locator(f'[name="goal_within_{i}"]').fill(format_duration(goal.within_seconds))
            form.locator(f'select[name="goal_end_{i}"]').select_option("exit" if goal.then_exit else "")
        quiet = journey.quiet_hours
        form.locator('[name="quiet_start"]').fill(str(quiet.start) if quiet else "")
        form.locator('[name="quiet_end"]').fill(str(quiet.end) if quiet else "")
        self.choose(form, "timezone", journey.timezone.name if journey.timezone else "")
        for i, cap in enumerate(journey.caps):
            if not self.shown(form, f"cap_count_{i}"):
                continue
            form.locator(f'[name="cap_count_{i}"]').fill(str(cap.count))
            form.locator(f'select[name="cap_channel_{i}"]').select_option(cap.channel or "")
            form.locator(f'[name="cap_per_{i}"]').fill(format_duration(cap.per_seconds))

    def trigger(self, form: Locator, i: int, trigger: m.Trigger) -> None:
        kind = form.locator(f'select[name="trigger_kind_{i}"]')
        match trigger:
            case m.EventTrigger(event=event, where=where):
                kind.select_option("event")
                self.event(form, f"trigger_event_{i}", event)
                self.condition(form, f"trigger_where_{i}", where)
            case m.ConditionTrigger(condition=condition):
                kind.select_option("when")
                self.condition(form, f"trigger_where_{i}", condition)
            case m.ScheduleTrigger(cron=cron, zone=zone):
                kind.select_option("schedule")
                form.locator(f'[name="trigger_cron_{i}"]').fill(cron)
                form.locator(f'select[name="trigger_zone_{i}"]').select_option("journey" if zone == "journey" else "")
            case _:
                kind.select_option("api")
