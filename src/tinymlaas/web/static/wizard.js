// The rollout wizard, over a form that works without it: choosing a model shows its variants at once,
// and the devices field says how many registered devices it chooses while it is typed, asking the
// server (/ui/targets), which chooses them by the rule campaigns do.
(function () {
  "use strict";

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.querySelector("form.wizard");
    if (!form) return;
    var model = form.querySelector("select[data-autosubmit]");
    var show = form.querySelector("[data-testid=wizard-show-variants]");
    if (model && show) {
      model.addEventListener("change", function () { form.requestSubmit(show); });
    }
    var field = form.querySelector("[data-testid=wizard-selector]");
    var count = form.querySelector("[data-testid=target-count]");
    if (!field || !count) return;
    var timer = null;
    function update() {
      var selector = field.value.trim();
      if (!selector) { count.textContent = ""; return; }
      fetch("/ui/targets?selector=" + encodeURIComponent(selector), { credentials: "same-origin" })
        .then(function (response) {
          if (!response.ok) throw new Error("status " + response.status);
          return response.json();
        })
        .then(function (match) {
          if (field.value.trim() !== selector) return; // a later keystroke has its own answer coming
          count.textContent = match.error
            ? match.error
            : match.count + (match.count === 1 ? " device: " : " devices: ") + match.endpoints.join(", ");
        })
        .catch(function () { count.textContent = "could not count the devices; Check still will"; });
    }
    field.addEventListener("input", function () {
      window.clearTimeout(timer);
      timer = window.setTimeout(update, 250);
    });
    form.querySelectorAll("[data-testid=target-option]").forEach(function (option) {
      option.addEventListener("click", function () {
        field.value = option.dataset.selector;
        update();
      });
    });
  });
})();
