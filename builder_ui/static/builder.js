// Journeyflow builder: the few things htmx does not do. Drag and drop (native HTML5), the "+"
// on an edge followed by a palette choice, keyboard shortcuts on steps, jumping from a
// problem to its line or step, undo and redo, the warning before unapplied form edits are
// lost, and opening a new step's form. Every change still goes through the server as an htmx
// request (the hidden #op-* forms), so there is no client-side model to drift from the DSL
// text: the undo history is only a list of texts the server answered with.
"use strict";
(() => {
  let armed = null; // the slot chosen with "+", waiting for a palette choice

  function submitOp(op, values) {
    const form = document.getElementById("op-" + op);
    if (!form) return;
    for (const [name, value] of Object.entries(values)) form.elements[name].value = value;
    form.requestSubmit();
  }

  function disarm() {
    if (armed) armed.classList.remove("armed");
    armed = null;
    const hint = document.getElementById("palette-hint");
    if (hint) hint.classList.remove("armed");
  }

  function endOfFlow() {
    const flow = document.querySelector("#canvas > .flow");
    const slots = flow ? flow.querySelectorAll(":scope > .slot") : [];
    return slots.length ? slots[slots.length - 1] : null;
  }

  document.addEventListener("click", (event) => {
    const plus = event.target.closest(".slot .plus");
    if (plus) {
      disarm();
      armed = plus.closest(".slot");
      armed.classList.add("armed");
      const hint = document.getElementById("palette-hint");
      if (hint) hint.classList.add("armed");
      const first = document.querySelector('.palette .kind:not([data-kind="trigger"])');
      if (first) first.focus();
      return;
    }
    const kind = event.target.closest(".palette .kind");
    if (kind && kind.dataset.kind !== "trigger") {
      const slot = armed || endOfFlow();
      const where = slot && {kind: kind.dataset.kind, block: slot.dataset.block, index: slot.dataset.index};
      if (where) guard(() => submitOp("insert", where)); // the new step's form will take the panel
      disarm();
      return;
    }
    if (event.target.closest("#undo")) { travel("undo"); return; }
    if (event.target.closest("#redo")) { travel("redo"); return; }
    const line = event.target.closest(".line-link");
    if (line) { selectLine(Number(line.dataset.line)); return; }
    const stepLink = event.target.closest(".step-link");
    if (stepLink) {
      event.preventDefault();
      const node = document.querySelector(`.node[data-step-id="${CSS.escape(stepLink.dataset.stepId)}"]`);
      if (node) { node.scrollIntoView({block: "center"}); node.focus(); node.click(); }
    }
  });

  function selectLine(number) {
    const area = document.getElementById("dsl-text");
    if (!area) return;
    const lines = area.value.split("\n");
    const start = lines.slice(0, number - 1).reduce((n, l) => n + l.length + 1, 0);
    area.focus();
    area.setSelectionRange(start, start + (lines[number - 1] || "").length);
  }

  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape") { disarm(); return; }
    if ((event.ctrlKey || event.metaKey) && !event.altKey && event.key.toLowerCase() === "z") {
      if (typing(event.target)) return; // the field's own undo
      event.preventDefault();
      travel(event.shiftKey ? "redo" : "undo");
      return;
    }
    const node = event.target.closest && event.target.closest(".step > .node");
    if (!node) return;
    if (event.key === "Delete" || event.key === "Backspace") {
      event.preventDefault();
      if (confirm("Delete this step?")) submitOp("delete", {path: node.dataset.path});
    } else if (event.altKey && (event.key === "ArrowUp" || event.key === "ArrowDown")) {
      event.preventDefault();
      submitOp("shift", {path: node.dataset.path, direction: event.key === "ArrowUp" ? "up" : "down"});
    }
  });

  // Drag and drop: palette kinds and steps onto slots.
  document.addEventListener("dragstart", (event) => {
    const source = event.target.closest && event.target.closest("[data-kind], .step > .node");
    if (!source) return;
    const payload = source.dataset.kind ? {kind: source.dataset.kind} : {path: source.dataset.path};
    event.dataTransfer.setData("application/x-journeyflow", JSON.stringify(payload));
    event.dataTransfer.effectAllowed = payload.kind ? "copy" : "move";
    document.body.classList.add("dragging");
  });
  document.addEventListener("dragend", () => document.body.classList.remove("dragging"));
  document.addEventListener("dragover", (event) => {
    const slot = event.target.closest && event.target.closest(".slot");
    if (slot) { event.preventDefault(); slot.classList.add("over"); }
  });
  document.addEventListener("dragleave", (event) => {
    const slot = event.target.closest && event.target.closest(".slot");
    if (slot) slot.classList.remove("over");
  });
  document.addEventListener("drop", (event) => {
    const slot = event.target.closest && event.target.closest(".slot");
    const raw = event.dataTransfer.getData("application/x-journeyflow");
    if (!slot || !raw) return;
    event.preventDefault();
    slot.classList.remove("over");
    const data = JSON.parse(raw);
    const where = {block: slot.dataset.block, index: slot.dataset.index};
    if (data.kind === "trigger") return;
    if (data.kind) guard(() => submitOp("insert", {kind: data.kind, ...where}));
    else submitOp("move", {path: data.path, ...where});
  });

  // ------------------------------------------------------------------ undo and redo
  // This tab's history of the journey's text, kept per journey in sessionStorage (so per tab,
  // and across a reload). Every answer that redraws the editor brings the saved text on #rev;
  // a new one is a step of history. Undo saves the previous text again through /restore,
  // which names the text it undoes (its rev): after another window saved, it is refused, the
  // answer is that window's text, and the history starts again from it, since undoing past
  // it would wipe out the other window's work.
  const LIMIT = 100;
  const texts = {undo: [], redo: [], current: null, pending: null};
  let revShown = null;
  const slug = () => document.querySelector("main.editor")?.dataset.slug;
  const storageKey = () => "journeyflow.history." + slug();

  function typing(target) {
    return !!(target && target.closest && target.closest("input, textarea, select, [contenteditable]"));
  }

  function startHistory() {
    const rev = document.getElementById("rev");
    if (!rev || !slug()) return;
    revShown = rev;
    texts.current = rev.dataset.source;
    let kept = null;
    try { kept = JSON.parse(sessionStorage.getItem(storageKey()) || "null"); } catch (error) { kept = null; }
    if (kept && kept.current === texts.current) { texts.undo = kept.undo; texts.redo = kept.redo; }
    showHistory();
  }

  function keepHistory() {
    const {undo, redo, current} = texts;
    try { sessionStorage.setItem(storageKey(), JSON.stringify({undo, redo, current})); } catch (error) { /* not kept */ }
  }

  function showHistory() {
    const undo = document.getElementById("undo"), redo = document.getElementById("redo");
    if (undo) undo.disabled = !texts.undo.length || !!texts.pending;
    if (redo) redo.disabled = !texts.redo.length || !!texts.pending;
  }

  function saw(rev) {
    const source = rev.dataset.source;
    if (source === undefined || source === texts.current) return;
    const pending = texts.pending;
    if (rev.hasAttribute("data-refused")) {
      texts.undo = []; texts.redo = [];
    } else if (pending && pending.text === source) {
      const [from, to] = pending.direction === "undo" ? [texts.undo, texts.redo] : [texts.redo, texts.undo];
      from.pop();
      to.push(texts.current);
    } else {
      texts.undo.push(texts.current);
      texts.undo.splice(0, Math.max(0, texts.undo.length - LIMIT));
      texts.redo = [];
    }
    texts.pending = null;
    texts.current = source;
    keepHistory();
    showHistory();
  }

  function travel(direction) {
    const stack = direction === "undo" ? texts.undo : texts.redo;
    if (!stack.length || texts.pending) return;
    guard(() => {  // no "Apply" here: applying, then undoing, would only undo that Apply
      texts.pending = {direction, text: stack[stack.length - 1]};
      showHistory();
      submitOp("restore", {source: texts.pending.text, direction});
    }, false);
  }

  // ------------------------------------------------------------------ unapplied form edits
  // A step's (or the settings') form is only saved by Apply. Opening something else in the
  // side panel, undoing, inserting a step or leaving the page would drop what was typed, so
  // first the #unapplied dialog asks: Apply, Discard, or Keep editing.
  let dirty = false;
  let formShown = null;
  let formRev = null; // the text's rev when the form shown was drawn
  let afterApply = null;
  const panelForm = () => document.querySelector("#panel #step-form, #panel #settings-form");

  function markDirty(event) {
    const form = panelForm();
    if (form && form.contains(event.target) && !(event.target.name || "").startsWith("sample_")) dirty = true;
  }
  document.addEventListener("input", markDirty);
  document.addEventListener("change", markDirty);

  function guard(proceed, canApply = true) {
    const form = panelForm();
    if (!dirty || !form) { proceed(); return; }
    const dialog = document.getElementById("unapplied");
    if (!dialog || typeof dialog.showModal !== "function") {
      if (confirm("You have changes that are not applied. Discard them?")) { dirty = false; proceed(); }
      return;
    }
    if (dialog.open) return;
    dialog.querySelector("[data-what]").textContent = form.id === "settings-form" ? "the settings" : "this step";
    dialog.querySelector('[value="apply"]').hidden = !canApply;
    dialog.returnValue = "";
    dialog.addEventListener("close", () => {
      if (dialog.returnValue === "discard") { dirty = false; proceed(); }
      else if (dialog.returnValue === "apply") { afterApply = proceed; applyPanel(form); }
      else (form.querySelector("[aria-invalid=true]") || form.querySelector(FIELDS))?.focus();
    }, {once: true});
    dialog.showModal();
  }

  function applyPanel(form) {
    if (form.id === "settings-form") form.requestSubmit();
    else document.getElementById("apply-step")?.click();
  }

  // An Apply that saved keeps its form in the panel: it is then clean, and what waited for it
  // goes on. One that was refused redraws the form with its problems (a new form, see below).
  document.addEventListener("htmx:finally:request", (event) => {
    const source = event.detail?.ctx?.sourceElement;
    const status = event.detail?.ctx?.response?.status;
    if (source && source.id === "op-restore") { texts.pending = null; showHistory(); }
    if (!source || !(source.id === "apply-step" || source.id === "settings-form") || !(status < 400)) return;
    dirty = false;
    const next = afterApply;
    afterApply = null;
    if (next) next();
  });

  // Something that would replace the panel's form (a step on the canvas, Settings, the Start
  // card, Publish...) waits for the dialog; the replayed click finds the form clean.
  document.addEventListener("click", (event) => {
    const opener = event.target.closest && event.target.closest('[hx-target="#panel"]');
    if (!opener || opener.closest("#panel")) return;
    // The form asked for is already open (or on its way, after an insert) for this very text:
    // fetching it again would only risk landing a blank copy on what is being typed.
    const coming = newStep !== null && opener.dataset.path === newStep && document.querySelector("#panel [data-new-step]");
    if (coming || opensShown(opener)) {
      event.preventDefault();
      event.stopPropagation();
      return;
    }
    if (!dirty || !panelForm()) return;
    event.preventDefault();
    event.stopPropagation();
    const again = finder(opener);
    guard(() => again()?.click());
  }, true);

  function opensShown(opener) {
    const form = panelForm();
    if (!form || form !== formShown || formRev !== document.getElementById("rev")?.value) return false;
    if (form.id === "settings-form") return (opener.getAttribute("hx-get") || "").endsWith("/settings");
    return opener.classList.contains("node") && opener.dataset.path === form.dataset.path;
  }

  // The clicked element again, after an Apply has redrawn the canvas (and the status bar)
  // it was in: the same step's card, or the same element of the same part of the page.
  function finder(element) {
    const stepId = element.dataset.stepId;
    const home = element.parentElement && element.parentElement.closest("[id]");
    const index = home ? [...home.querySelectorAll('[hx-target="#panel"]')].indexOf(element) : -1;
    const selector = stepId ? `#canvas .step > .node[data-step-id="${CSS.escape(stepId)}"]` : null;
    return () => {
      if (element.isConnected) return element;
      if (selector) return document.querySelector(selector);
      if (element.id) return document.getElementById(element.id);
      const place = home && document.getElementById(home.id);
      return place ? place.querySelectorAll('[hx-target="#panel"]')[index] : null;
    };
  }

  // "+ branch" and a branch's "×" change the step whose form may be open: unapplied edits to
  // it are asked about first, and its form is drawn again with the new branches afterwards,
  // so its shares (or conditions) are never those of the branches it had.
  let redrawStep = null;
  document.addEventListener("click", (event) => {
    const button = event.target.closest && event.target.closest(".add-branch, .remove-branch");
    const form = panelForm();
    if (!button || !form || form.id !== "step-form") return;
    const path = JSON.parse(button.getAttribute("hx-vals") || "{}").path;
    if (path !== form.dataset.path) return;
    redrawStep = path;
    if (!dirty) return;
    event.preventDefault();
    event.stopPropagation();
    const kind = button.classList.contains("add-branch") ? ".add-branch" : ".remove-branch";
    const vals = button.getAttribute("hx-vals");
    const again = () => [...document.querySelectorAll(`#canvas ${kind}`)].find((b) => b.getAttribute("hx-vals") === vals);
    guard(() => { redrawStep = path; again()?.click(); });
  }, true);
  document.addEventListener("htmx:finally:request", (event) => {
    const source = event.detail?.ctx?.sourceElement;
    if (!redrawStep || !source || !source.matches || !source.matches(".add-branch, .remove-branch")) return;
    const path = redrawStep;
    redrawStep = null;
    if (!(event.detail?.ctx?.response?.status < 400)) return;
    document.querySelector(`#canvas .step > .node[data-path="${CSS.escape(path)}"]`)?.click();
  });

  window.addEventListener("beforeunload", (event) => {
    if (dirty && panelForm()) { event.preventDefault(); event.returnValue = ""; }
  });

  // ------------------------------------------------------------------ a new step's form
  // An insert answers with a loader in the panel ([data-new-step]) that fetches the new
  // step's form; when it comes, the keyboard goes to its first field and the canvas to its card.
  const FIELDS = "input:not([type=hidden]), select, textarea";
  let newStep = null;

  function panelChanged() {
    const loader = document.querySelector("#panel [data-new-step]");
    if (loader) newStep = loader.dataset.newStep;
    const form = panelForm();
    if (form === formShown) return;
    formShown = form;
    formRev = document.getElementById("rev")?.value ?? null;
    afterApply = null; // a refused Apply (the form again, with its problems), or another form
    if (!form) dirty = false;
    if (form && newStep !== null && form.dataset.path === newStep) {
      newStep = null;
      const card = document.querySelector(`#canvas .step[data-path="${CSS.escape(form.dataset.path)}"] > .node`);
      if (card) card.scrollIntoView({block: "center", inline: "center"});
      form.querySelector(FIELDS)?.focus({preventScroll: true});
    }
  }

  function watch() {
    const rev = document.getElementById("rev");
    if (rev && rev !== revShown) { revShown = rev; saw(rev); }
    panelChanged();
  }

  function start() {
    startHistory();
    formShown = panelForm();
    formRev = document.getElementById("rev")?.value ?? null;
    new MutationObserver(watch).observe(document.body, {childList: true, subtree: true});
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
