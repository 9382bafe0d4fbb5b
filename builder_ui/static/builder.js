// Journeyflow builder: the few things htmx does not do. Drag and drop (native HTML5), the "+"
// on an edge followed by a palette choice, keyboard shortcuts on steps, and jumping from a
// problem to its line or step. Every change still goes through the server as an htmx request
// (the hidden #op-* forms), so there is no client-side model to drift from the DSL text.
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
      if (slot) submitOp("insert", {kind: kind.dataset.kind, block: slot.dataset.block, index: slot.dataset.index});
      disarm();
      return;
    }
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
    if (data.kind) submitOp("insert", {kind: data.kind, ...where});
    else submitOp("move", {path: data.path, ...where});
  });
})();
