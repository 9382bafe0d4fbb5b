// Journeyflow builder: the step forms' small behaviours that need no server round trip.
// The "Insert…" menu puts a placeholder at the cursor; a typed value's kind shows its box (the
// other kinds' boxes are disabled, so each value posts once); "other…" opens a name box; the
// webhook body's buttons add and remove rows. The server reads the rows back into the DSL
// (builder_ui/value_rows.py): nothing here knows the DSL beyond `{{ ... }}`.
"use strict";
(() => {
  const OTHER = "__other__";
  let lastText = null; // the message field the menu inserts into: the last one focused

  document.addEventListener("focusin", (event) => {
    const field = event.target.closest('#step-form textarea[name="text"], #step-form input[name="title"]');
    if (field) lastText = field;
  });

  function quoted(words) {
    return words.includes("'") ? `"${words.replace(/"/g, "")}"` : `'${words}'`;
  }

  function insertAtCursor(field, text) {
    const start = field.selectionStart ?? field.value.length;
    const end = field.selectionEnd ?? start;
    field.value = field.value.slice(0, start) + text + field.value.slice(end);
    field.selectionStart = field.selectionEnd = start + text.length;
    field.focus();
    field.dispatchEvent(new Event("input", {bubbles: true}));
  }

  function insertPlaceholder(menu) {
    const code = menu.value;
    menu.value = "";
    if (!code) return;
    const form = menu.closest("form");
    const field = lastText && form.contains(lastText) ? lastText : form.querySelector('textarea[name="text"]');
    if (!field) return;
    if (code.endsWith(".*")) {  // a reply's field, named in the box beside the menu
      const box = form.querySelector(".placeholder-field");
      const named = box ? box.value.trim() : "";
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(named)) {
        if (box) { box.hidden = false; box.focus(); box.setAttribute("aria-invalid", "true"); }
        return;
      }
      box.setAttribute("aria-invalid", "false");
      insertAtCursor(field, `{{ ${code.slice(0, -1)}${named} }}`);
      return;
    }
    const fallback = form.querySelector(".placeholder-default");
    const words = fallback ? fallback.value.trim() : "";
    const filter = words && code.startsWith("user.") ? ` | default(${quoted(words)})` : "";
    insertAtCursor(field, `{{ ${code}${filter} }}`);
  }

  function showOther(scope) {
    const box = scope.querySelector(":scope > [data-other-box], :scope > * > [data-other-box]");
    if (!box) return;
    const select = [...scope.querySelectorAll("[data-other-select]")].find((s) => !s.disabled);
    const open = Boolean(select && select.value === OTHER);
    box.hidden = !open;
    if (open) box.focus();
  }

  function switchKind(select) {
    const scope = select.closest("[data-kind-scope]");
    for (const control of scope.querySelectorAll("[data-when]")) {
      const on = control.dataset.when === select.value;
      control.hidden = !on;
      control.disabled = !on;
    }
    showOther(scope);
  }

  // ---------------------------------------------------------------- the webhook body's rows

  function depth(row) { return Number(row.dataset.depth || 0); }

  function lastDescendant(row) {
    let last = row;
    for (let next = row.nextElementSibling; next && depth(next) > depth(row); next = next.nextElementSibling) last = next;
    return last;
  }

  function addRow(button, which) {
    const editor = button.closest(".body-editor");
    const template = editor.querySelector(`template.body-${which}-template`);
    const row = template.content.firstElementChild.cloneNode(true);
    const parent = button.closest(".body-row");
    const level = parent ? depth(parent) + 1 : 0;
    row.dataset.depth = String(level);
    row.style.setProperty("--depth", String(level));
    row.querySelector('input[name="body_depth"]').value = String(level);
    if (parent && parent.dataset.kind === "list") row.classList.add("in-list");
    const rows = editor.querySelector(".body-rows");
    if (parent) lastDescendant(parent).after(row); else rows.append(row);
    const focus = row.classList.contains("in-list") ? row.querySelector(".body-value:not([disabled])") : row.querySelector(".body-key");
    if (focus) focus.focus();
    changed(rows);
  }

  function removeRow(button) {
    const row = button.closest(".body-row");
    const rows = row.parentElement;
    const doomed = [row];
    for (let next = row.nextElementSibling; next && depth(next) > depth(row); next = next.nextElementSibling) doomed.push(next);
    for (const gone of doomed) gone.remove();
    changed(rows);
  }

  function changed(element) {
    element.dispatchEvent(new Event("change", {bubbles: true}));
  }

  document.addEventListener("change", (event) => {
    const target = event.target;
    if (target.matches("select.placeholder-menu")) { insertPlaceholder(target); return; }
    if (target.matches("[data-kind-select]")) switchKind(target);
    else if (target.matches("[data-other-select]")) showOther(target.closest("[data-kind-scope]"));
  });

  document.addEventListener("click", (event) => {
    const button = event.target.closest(".body-editor button");
    if (!button) return;
    if (button.classList.contains("body-add")) addRow(button, "row");
    else if (button.classList.contains("body-add-group")) addRow(button, "group");
    else if (button.classList.contains("body-add-list")) addRow(button, "list");
    else if (button.classList.contains("body-remove")) removeRow(button);
  });
})();
