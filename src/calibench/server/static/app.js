// calibench workbench: self-refreshing fragments and small form behaviours. No dependencies.
"use strict";

// An element with data-refresh="/fragments/…" reloads its content every data-every ms while the
// content holds a [data-active] marker (a job queued or running). With data-reload-when-done the
// whole page reloads once the job ends, to show its results.
function follow(el) {
  const every = parseInt(el.dataset.every || "1500", 10);
  const tick = async () => {
    if (!el.querySelector("[data-active]")) return;
    try {
      const response = await fetch(el.dataset.refresh, { credentials: "same-origin" });
      if (response.ok) {
        el.innerHTML = await response.text();
        if (!el.querySelector("[data-active]") && "reloadWhenDone" in el.dataset) {
          window.location.reload();
          return;
        }
      }
    } catch (error) {
      // The server may be restarting: keep trying.
    }
    window.setTimeout(tick, every);
  };
  window.setTimeout(tick, every);
}

// The Optimize subtab: the INT8 checkbox enables the Optimize button.
function enabler(box) {
  const target = document.getElementById(box.dataset.enables);
  const sync = () => { if (target) target.disabled = !box.checked; };
  box.addEventListener("change", sync);
  sync();
}

// The Optimize INT8 page: the maximum drop matters only for AccuracyAware, the timing budget
// only for measured placement.
function optimizeForm(form) {
  const aa = form.querySelector("#method-aa");
  const drop = form.querySelector("#max-drop-field");
  const placement = form.querySelector("#placement");
  const budget = form.querySelectorAll("#placement-budget-field, #placement-budget-hint");
  const sync = () => {
    drop.hidden = !aa.checked;
    const byRule = placement !== null && placement.value === "rule";
    budget.forEach((el) => { el.hidden = byRule; });
  };
  form.addEventListener("change", sync);
  sync();
  calibrationHints(form);
}

// Beside Subset Size: how many samples it takes of the chosen dataset (the calibration's rule,
// ceil(n × % / 100), at least 1), a warning below data-few of them, and a warning when the
// chosen dataset is the project's validation set. The server writes the same words first.
function calibrationHints(form) {
  const select = form.querySelector("#calibration-dataset");
  const subset = form.querySelector("#subset");
  const note = form.querySelector("#subset-count");
  const same = form.querySelector("#same-as-validation");
  if (!select || !subset || !note) return;
  const few = parseInt(note.dataset.few || "100", 10);
  const samples = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;
  const sync = () => {
    const option = select.options[select.selectedIndex];
    if (same) same.hidden = !option || option.value !== select.dataset.validation;
    if (!option) return;
    const available = parseInt(option.dataset.samples || "0", 10);
    const percent = parseFloat(subset.value);
    if (!(percent > 0 && percent <= 100)) {
      note.textContent = `of ${samples(available, "sample")}`;
      note.classList.remove("few");
      return;
    }
    const taken = Math.max(1, Math.min(available, Math.ceil((available * percent) / 100 - 1e-9)));
    let text = `= ${samples(taken, "sample")} of ${available}`;
    if (taken < few && few <= available) {
      text += `. Fewer than ${few} samples give noisy ranges and can cost accuracy: take a larger subset`;
    } else if (taken < few) {
      text += `. The whole dataset holds fewer than ${few} samples: ranges from so few can cost accuracy; import a larger calibration dataset if you can`;
    }
    note.textContent = text;
    note.classList.toggle("few", taken < few);
  };
  select.addEventListener("change", sync);
  subset.addEventListener("input", sync);
  sync();
}

function layerFilter(box) {
  const table = document.getElementById(box.dataset.filter);
  box.addEventListener("change", () => table.classList.toggle("only-fp32", box.checked));
}

// The comparison report sits in a same-origin frame: size it to its content.
function fitFrame(frame) {
  const fit = () => {
    try {
      frame.style.height = frame.contentDocument.documentElement.scrollHeight + 20 + "px";
    } catch (error) { /* not loaded yet */ }
  };
  frame.addEventListener("load", fit);
}

// Forms that delete things ask first.
function confirming(form) {
  form.addEventListener("submit", (event) => {
    if (!window.confirm(form.dataset.confirm)) event.preventDefault();
  });
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("form[data-confirm]").forEach(confirming);
  document.querySelectorAll("[data-refresh]").forEach(follow);
  document.querySelectorAll("[data-enables]").forEach(enabler);
  document.querySelectorAll("[data-filter]").forEach(layerFilter);
  const form = document.getElementById("optimize-form");
  if (form) optimizeForm(form);
  const frame = document.getElementById("report");
  if (frame) fitFrame(frame);
});
