// Draws every Plotly chart on the page and, where the page asks for it, keeps its live part current.
// A chart is <div class="chart" data-figure='{"data": [...], "layout": {...}}'>. A page whose
// <main id="live" data-poll> is set re-fetches itself every poll interval and swaps that element's
// contents in place, so numbers change without a reload and form fields outside it keep their input.
// The live part is a polite live region, so a screen reader hears what changed without losing its place;
// a chart the page gave no text alternative is labelled with its title.
(function () {
  "use strict";

  function drawCharts(root) {
    if (typeof Plotly === "undefined") return;
    root.querySelectorAll(".chart[data-figure]").forEach(function (el) {
      var figure = JSON.parse(el.dataset.figure);
      if (!el.hasAttribute("aria-label")) {
        var title = figure.layout && figure.layout.title;
        el.setAttribute("role", "figure");
        el.setAttribute("aria-label", "Chart: " + ((title && (title.text || title)) || "no title"));
      }
      Plotly.react(el, figure.data, figure.layout, { displaylogo: false, responsive: true });
    });
  }

  function poll(live, intervalMs) {
    fetch(window.location.href, { headers: { "X-Live": "1" }, credentials: "same-origin" })
      .then(function (response) {
        if (response.redirected || !response.ok) throw new Error("status " + response.status);
        return response.text();
      })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("live");
        if (fresh) {
          live.setAttribute("aria-busy", "true");
          live.innerHTML = fresh.innerHTML;
          drawCharts(live);
          live.removeAttribute("aria-busy");
          var stamp = document.getElementById("live-stamp");
          if (stamp) stamp.textContent = "updated " + new Date().toLocaleTimeString();
          if (!fresh.hasAttribute("data-poll")) return; // the page says nothing is running any more
        }
        window.setTimeout(function () { poll(live, intervalMs); }, intervalMs);
      })
      .catch(function () {
        var stamp = document.getElementById("live-stamp");
        if (stamp) stamp.textContent = "server unreachable; retrying";
        window.setTimeout(function () { poll(live, intervalMs); }, intervalMs * 2);
      });
  }

  document.addEventListener("DOMContentLoaded", function () {
    drawCharts(document);
    var live = document.getElementById("live");
    if (live && !live.hasAttribute("aria-live")) live.setAttribute("aria-live", "polite");
    if (live && live.hasAttribute("data-poll")) {
      var intervalMs = parseInt(document.body.dataset.pollMs || "3000", 10);
      window.setTimeout(function () { poll(live, intervalMs); }, intervalMs);
    }
  });
})();
