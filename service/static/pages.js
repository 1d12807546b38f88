// abcscale's pages: the little JavaScript they use (the pages work without it, less conveniently).
"use strict";

// The calculator: show the fieldsets of the chosen source only.
function showSource() {
  const chosen = document.querySelector('input[name="source"]:checked');
  if (!chosen) return;
  for (const set of document.querySelectorAll("fieldset[data-source]")) {
    const off = set.dataset.source !== chosen.value;
    set.hidden = off;
    set.disabled = off;  // a hidden field is not sent
  }
}

// Copy buttons: the export's text to the clipboard (or selected, where the clipboard is not allowed).
function copy(button) {
  const pre = document.getElementById(button.dataset.copy);
  const text = pre.textContent;
  const done = () => { button.textContent = "Copied"; setTimeout(() => { button.textContent = "Copy"; }, 1500); };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(done, () => select(pre));
  } else {
    select(pre);
  }
}

function select(node) {
  const range = document.createRange();
  range.selectNodeContents(node);
  const sel = window.getSelection();
  sel.removeAllRanges();
  sel.addRange(range);
}

// Plots: the service draws a fit's PNGs on first request and answers 202 + Retry-After meanwhile; ask again
// until it answers the image (200) or says why there is none (404, 503).
async function loadPlot(img, tries) {
  const status = img.closest("figure").querySelector(".plot-status");
  let response;
  try {
    response = await fetch(img.dataset.src);
  } catch (err) {
    status.textContent = "The plot could not be loaded (network error).";
    return;
  }
  if (response.status === 200) {
    img.src = URL.createObjectURL(await response.blob());
    img.dataset.loaded = "true";
    status.textContent = "";
    return;
  }
  if ((response.status === 202 || response.status === 503) && tries < 60) {
    const wait = Number(response.headers.get("Retry-After")) || 2;
    status.textContent = "Drawing the plot…";
    setTimeout(() => loadPlot(img, tries + 1), wait * 1000);
    return;
  }
  let why = `HTTP ${response.status}`;
  try { why = (await response.json()).detail || why; } catch (err) { /* not JSON */ }
  img.dataset.loaded = "false";
  status.textContent = `No plot: ${why}`;
}

document.addEventListener("DOMContentLoaded", () => {
  for (const radio of document.querySelectorAll('input[name="source"]')) radio.addEventListener("change", showSource);
  showSource();
  for (const button of document.querySelectorAll("button.copy")) button.addEventListener("click", () => copy(button));
  for (const img of document.querySelectorAll("img.plot[data-src]")) loadPlot(img, 0);
});
