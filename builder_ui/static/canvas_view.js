// Journeyflow builder: looking around the canvas. A wide journey (a three-arm split) is wider
// than the screen, so the canvas gets Fit, −, +, 100% (CSS `zoom` on the drawn flow, remembered
// per journey in localStorage), panning by dragging empty canvas, and opens fitted to its width,
// scrolled to the Start card. Only the view changes here: nothing is sent to the server.
"use strict";
(() => {
  const MIN = 0.25, MAX = 2, STEP = 0.1;
  let zoom = 1;

  const wrap = () => document.querySelector(".editor .canvas-wrap");
  const canvas = () => document.getElementById("canvas");
  const slug = () => (document.querySelector("main.editor") || {dataset: {}}).dataset.slug || "";
  const storageKey = () => "journeyflow.canvas-zoom." + slug();

  function remembered() {
    try {
      const value = parseFloat(localStorage.getItem(storageKey()) || "");
      return Number.isFinite(value) ? value : null;
    } catch (error) {
      return null; // storage refused (private mode): the view is simply not remembered
    }
  }

  function remember() {
    try { localStorage.setItem(storageKey(), String(zoom)); } catch (error) { /* see remembered() */ }
  }

  // The zoom is a custom property on #canvas, read by its children's `zoom` in builder.css, so
  // it survives every redraw (htmx replaces #canvas's children, never #canvas itself).
  function apply(level) {
    zoom = Math.min(MAX, Math.max(MIN, Math.round(level * 100) / 100));
    canvas().style.setProperty("--canvas-zoom", String(zoom));
    const shown = document.getElementById("canvas-zoom-level");
    if (shown) shown.textContent = Math.round(zoom * 100) + "%";
  }

  // The flow's width at 100%, measured at 100%: the widest of the drawn parts.
  function naturalWidth() {
    const c = canvas();
    const old = c.style.getPropertyValue("--canvas-zoom");
    c.style.setProperty("--canvas-zoom", "1");
    let width = 0;
    for (const child of c.children) width = Math.max(width, child.getBoundingClientRect().width);
    c.style.setProperty("--canvas-zoom", old || "1");
    return width;
  }

  function roomWidth() {
    const w = wrap(), style = getComputedStyle(w);
    return w.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
  }

  function fitLevel() {
    const natural = naturalWidth();
    return natural > 0 ? Math.min(1, roomWidth() / natural) : 1;
  }

  // Start card in view: the top of the flow, centred across (the Start card is centred).
  function toStart() {
    const w = wrap();
    w.scrollTop = 0;
    w.scrollLeft = Math.max(0, (w.scrollWidth - w.clientWidth) / 2);
  }

  // Zoom around the middle of what is shown, so + and − do not jump somewhere else.
  function zoomTo(level) {
    const w = wrap();
    const cx = (w.scrollLeft + w.clientWidth / 2) / Math.max(1, w.scrollWidth);
    const cy = (w.scrollTop + w.clientHeight / 2) / Math.max(1, w.scrollHeight);
    apply(level);
    w.scrollLeft = cx * w.scrollWidth - w.clientWidth / 2;
    w.scrollTop = cy * w.scrollHeight - w.clientHeight / 2;
    remember();
  }

  const ACTIONS = {
    fit: () => { apply(fitLevel()); remember(); toStart(); },
    out: () => zoomTo(zoom - STEP),
    in: () => zoomTo(zoom + STEP),
    reset: () => zoomTo(1),
  };

  function tools() {
    const bar = document.createElement("div");
    bar.className = "canvas-tools";
    bar.setAttribute("role", "toolbar");
    bar.setAttribute("aria-label", "Canvas view");
    for (const [action, text, label] of [["fit", "Fit", "Fit the journey to the width"],
                                         ["out", "−", "Zoom out"], ["in", "+", "Zoom in"],
                                         ["reset", "100%", "Actual size"]]) {
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.view = action;
      button.textContent = text;
      button.title = label;
      button.setAttribute("aria-label", label);
      bar.append(button);
    }
    const level = document.createElement("span");
    level.id = "canvas-zoom-level";
    level.className = "zoom-level";
    level.setAttribute("aria-live", "polite");
    bar.append(level);
    return bar;
  }

  // Panning: a mouse or pen dragged on empty canvas scrolls it (fingers already scroll). Steps,
  // "+" and buttons keep their own clicks and drags (builder.js's drag and drop).
  const GRABBY = "button, a, input, textarea, select, label, summary, .node, .slot, .branch-title, .canvas-tools";
  let pan = null;

  function panStart(event) {
    if (event.button !== 0 || event.pointerType === "touch" || event.target.closest(GRABBY)) return;
    const w = wrap();
    pan = {x: event.clientX, y: event.clientY, left: w.scrollLeft, top: w.scrollTop, id: event.pointerId};
    w.setPointerCapture(event.pointerId);
    w.classList.add("panning");
    event.preventDefault();
  }

  function panMove(event) {
    if (!pan || event.pointerId !== pan.id) return;
    const w = wrap();
    w.scrollLeft = pan.left - (event.clientX - pan.x);
    w.scrollTop = pan.top - (event.clientY - pan.y);
  }

  function panEnd(event) {
    if (!pan || event.pointerId !== pan.id) return;
    wrap().classList.remove("panning");
    pan = null;
  }

  function start() {
    const w = wrap();
    if (!w || !canvas() || w.querySelector(".canvas-tools")) return;
    w.prepend(tools());
    w.classList.add("has-tools");
    w.addEventListener("click", (event) => {
      const button = event.target.closest(".canvas-tools [data-view]");
      if (button) ACTIONS[button.dataset.view]();
    });
    w.addEventListener("pointerdown", panStart);
    w.addEventListener("pointermove", panMove);
    w.addEventListener("pointerup", panEnd);
    w.addEventListener("pointercancel", panEnd);
    w.addEventListener("wheel", (event) => { // Ctrl + wheel (and a trackpad pinch) zooms
      if (!event.ctrlKey) return;
      event.preventDefault();
      zoomTo(zoom * (event.deltaY < 0 ? 1.1 : 1 / 1.1));
    }, {passive: false});
    const saved = remembered();
    apply(saved !== null ? saved : fitLevel());
    toStart();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
