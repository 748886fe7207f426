// The data explorer's projection: clicking a point shows that sample beside the chart (its thumbnail
// for an image dataset, its id and label) with a link to its class in the sample grid. Each point's
// customdata is [sample id, label or target] (an empty label: unlabelled); live.js draws the chart
// before this runs.
(function () {
  "use strict";

  document.addEventListener("DOMContentLoaded", function () {
    var chart = document.querySelector('[data-testid="projection"]');
    var pick = document.querySelector('[data-testid="projection-pick"]');
    if (!chart || !pick || typeof chart.on !== "function") return;
    var dataset = encodeURIComponent(chart.dataset.dataset);
    var image = pick.querySelector("img");
    chart.on("plotly_click", function (event) {
      if (!event.points || !event.points.length) return;
      var sample = event.points[0].customdata[0];
      var label = event.points[0].customdata[1];
      var regression = chart.dataset.regression === "1";
      var unlabelled = !regression && label === "";
      pick.querySelector('[data-pick="id"]').textContent = sample;
      pick.querySelector('[data-pick="label"]').textContent =
        regression ? "target " + label : unlabelled ? "unlabelled" : label;
      var link = pick.querySelector('[data-pick="link"]');
      link.href = unlabelled ? "?unlabelled=1" : "?label=" + encodeURIComponent(label);
      link.hidden = regression;
      if (chart.dataset.images === "1") {
        image.src = "/datasets/" + dataset + "/samples/" + encodeURIComponent(sample) + "/thumbnail.png";
        image.alt = "sample " + sample;
        image.hidden = false;
      }
      pick.hidden = false;
    });
  });
})();
