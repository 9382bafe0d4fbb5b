// The condition editor follows the event typed beside it: when a trigger's, a goal's or a
// wait's event changes, the editor that names that field redraws (on the server, via the
// editor's own "cond-refresh" trigger) with that event's properties.
document.addEventListener("change", (e) => {
  const name = e.target && e.target.name;
  if (!name) return;
  const form = e.target.form;
  if (!form) return;
  form.querySelectorAll(".cond-editor[data-event-field]").forEach((editor) => {
    if (editor.dataset.eventField === name) editor.dispatchEvent(new CustomEvent("cond-refresh"));
  });
});
