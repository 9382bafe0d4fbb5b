// Journeyflow builder, issue 7: refill the step counts as soon as the canvas is redrawn.
// The counts are polled every 5 s (editor_live.html); an edit redraws the canvas with empty
// count slots, and without this they would stay empty until the next poll.
"use strict";
(() => {
  document.addEventListener("htmx:after:swap", (event) => {
    const poll = document.getElementById("live-poll");
    if (!poll || event.target === poll) return;
    if (document.querySelector("#canvas .node .counts:empty")) poll.dispatchEvent(new CustomEvent("recount"));
  });
})();
