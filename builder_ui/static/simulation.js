// Journeyflow builder: the simulated path on the canvas. The result partial carries the visits
// (step id -> visit numbers) as data; this marks those steps and shows their numbers, again
// whenever the canvas is redrawn. When the journey text changes (the #rev fingerprint moves),
// a shown result is rerun and the saved scenarios are told to rerun ("journey-changed").
"use strict";
(() => {
  let rev = null;

  function paint() {
    for (const node of document.querySelectorAll("#canvas .sim-visited")) {
      node.classList.remove("sim-visited");
      delete node.dataset.simOrder;
    }
    const result = document.querySelector("#sim-result [data-visits]");
    if (!result) return;
    const visits = JSON.parse(result.dataset.visits);
    for (const [step, numbers] of Object.entries(visits)) {
      const selector = `#canvas .step[data-step-id="${CSS.escape(step)}"] > .node`;
      for (const node of document.querySelectorAll(selector)) {
        node.classList.add("sim-visited");
        node.dataset.simOrder = numbers.join(", ");
      }
    }
  }

  function changed() {
    const input = document.getElementById("rev");
    const now = input ? input.value : null;
    if (rev === null || now === rev) { rev = now; return; }
    rev = now;
    const form = document.getElementById("sim-form");
    if (form && document.querySelector("#sim-result > *")) form.requestSubmit();
    document.body.dispatchEvent(new CustomEvent("journey-changed"));
  }

  let queued = false;
  function later() {
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => { queued = false; paint(); changed(); });
  }

  function start() {
    rev = document.getElementById("rev")?.value ?? null;
    // Only new or removed nodes: painting sets classes and attributes, so it never loops.
    new MutationObserver(later).observe(document.body, {childList: true, subtree: true});
    paint();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
