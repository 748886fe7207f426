// Keyboard labelling on a dataset's sample browser, over forms that work without it.
// Keys (while no text field or list has focus): j / k focus the next / previous sample; 1-9 give the
// focused sample the n-th class (the order of the class table) and move on; 0 clears its label;
// x ticks its checkbox for the bulk form. A sample's own form is saved in the background, without
// leaving the page; the counts above the grid follow and a status line confirms it; a refusal is
// shown on the sample.
(function () {
  "use strict";

  function cards() {
    return Array.prototype.slice.call(document.querySelectorAll(".sample[data-sample]"));
  }

  function focusedIndex() {
    var card = document.activeElement && document.activeElement.closest(".sample[data-sample]");
    return card ? cards().indexOf(card) : -1;
  }

  function focusAt(index) {
    var all = cards();
    if (!all.length) return;
    var card = all[Math.max(0, Math.min(all.length - 1, index))];
    card.focus();
    card.scrollIntoView({ block: "nearest" });
  }

  function refusal(html, status) {
    var page = new DOMParser().parseFromString(html, "text/html");
    var flash = page.querySelector(".flash.error");
    return flash ? flash.textContent.trim() : "refused (status " + status + ")";
  }

  function bump(el, delta) {
    if (!el) return undefined;
    var value = (parseInt(el.textContent, 10) || 0) + delta;
    el.textContent = String(value);
    return value;
  }

  // The counters the page rendered, moved by one sample's change of label.
  function count(before, after) {
    if (before === after) return;
    var change = (after ? 1 : 0) - (before ? 1 : 0);
    bump(document.querySelector("[data-testid=count-labelled]"), change);
    var unlabelledCard = document.querySelector("[data-testid=count-unlabelled]");
    var unlabelled = bump(unlabelledCard, -change);
    if (unlabelled !== undefined) unlabelledCard.classList.toggle("warn", unlabelled > 0);
    document.querySelectorAll("[data-testid=class-row]").forEach(function (row) {
      var delta = (row.dataset.class === after ? 1 : 0) - (row.dataset.class === before ? 1 : 0);
      if (delta) bump(row.querySelector("[data-testid=class-count]"), delta);
    });
  }

  function announce(card, label) {
    var status = document.querySelector("[data-testid=keyboard-status]");
    if (!status) return;
    var id = card.dataset.sample;
    status.textContent = label ? "Sample " + id + " labelled " + label + "." : "Label of sample " + id + " cleared.";
    status.hidden = false;
  }

  function show(card, label) {
    count(card.dataset.label || "", label || "");
    card.dataset.label = label || "";
    var text = card.querySelector("[data-testid=sample-label]");
    if (text) {
      text.textContent = label || "unlabelled";
      text.classList.toggle("warn", !label);
    }
    var field = card.querySelector("form.label-one [name=label]");
    if (field) field.value = label || "";
  }

  function save(card, label) {
    var form = card.querySelector("form.label-one");
    if (!form) return;
    var data = new FormData(form);
    data.delete("clear");
    if (label === null) data.set("clear", "1");
    else data.set("label", label);
    card.classList.add("saving");
    card.removeAttribute("data-error");
    fetch(form.action, { method: "POST", body: data, credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok || response.url.indexOf("/login") !== -1) {
          return response.text().then(function (html) { throw new Error(refusal(html, response.status)); });
        }
        show(card, label);
        announce(card, label);
      })
      .catch(function (error) {
        card.setAttribute("data-error", error.message);
        card.title = error.message;
      })
      .then(function () { card.classList.remove("saving"); });
  }

  function onKey(event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    var target = event.target;
    if (target.matches && target.matches("select, textarea, input:not([type=checkbox])")) return;
    var index = focusedIndex();
    var key = event.key;
    if (key === "j") focusAt(index + 1);
    else if (key === "k") focusAt(index < 0 ? 0 : index - 1);
    else if (index < 0) return;
    else if (/^[1-9]$/.test(key)) {
      var classes = JSON.parse(document.querySelector("[data-classes]").dataset.classes || "[]");
      var label = classes[parseInt(key, 10) - 1];
      if (label === undefined) return;
      save(cards()[index], label);
      focusAt(index + 1);
    } else if (key === "0") save(cards()[index], null);
    else if (key === "x") {
      var box = cards()[index].querySelector("input[type=checkbox]");
      if (box) box.checked = !box.checked;
    } else return;
    event.preventDefault();
  }

  function start() {
    if (!document.querySelector("form.label-one")) return; // read-only: nothing to label
    document.addEventListener("keydown", onKey);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
