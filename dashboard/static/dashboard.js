// Reload the page every few seconds (data-refresh on <body>) unless a form is being
// edited or the tab is hidden; follow rebuilds by polling their progress endpoint.
(function () {
  "use strict";
  var every = Number(document.body.dataset.refresh || 0);
  var editing = false;
  var dirty = false;
  var polling = 0;

  document.addEventListener("focusin", function (event) {
    if (event.target.matches("input, select, textarea")) { editing = true; }
  });
  document.addEventListener("focusout", function () { editing = false; });
  document.addEventListener("input", function () { dirty = true; });

  if (every > 0) {
    window.setInterval(function () {
      if (!editing && !dirty && !polling && !document.hidden) { window.location.reload(); }
    }, every * 1000);
  }

  function follow(box) {
    var bar = box.querySelector("progress");
    var text = box.querySelector("[data-progress-text]");
    polling += 1;
    function tick() {
      fetch(box.dataset.progressUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) { return response.json(); })
        .then(function (body) {
          if (body.done) {
            polling -= 1;
            text.textContent = "done: generation " + body.active + " is live";
            box.dataset.done = "true";
            bar.max = 1; bar.value = 1;
            var row = box.closest("tr");
            var generation = row && row.querySelector("[data-generation]");
            if (generation) { generation.textContent = body.active; }
            // The row's subscription is now the new generation's, named by the server.
            var label = row && row.querySelector("[data-subscription-name]");
            if (label && body.subscription) { label.textContent = body.subscription; }
            return;
          }
          bar.max = body.head || 1;
          bar.value = body.checkpoint || 0;
          text.textContent = body.error
            ? "stopped: " + body.error
            : "generation " + body.building + ": " + body.percent + " % (" + body.lag_events + " events to go)";
          window.setTimeout(tick, 1000);
        })
        .catch(function () { window.setTimeout(tick, 3000); });
    }
    tick();
  }
  document.querySelectorAll("[data-progress-url]").forEach(follow);
})();
