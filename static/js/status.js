/* Follows one submission's status without reloading the page.
 *
 * While the submission is queued or running, polls its JSON (GET /api/v1/submissions/<id>/,
 * the session authenticates) every second and updates the badge and steps; once it is
 * scored, failed or cancelled, fetches the submission's page and swaps in the panel the
 * server rendered there (scores, or every problem with its line), then stops.
 */
(function () {
  "use strict";

  const LABELS = { queued: "Queued", running: "Running", scored: "Scored", failed: "Failed", cancelled: "Cancelled" };
  const DETAILS = {
    queued: "Waiting for a scoring worker… this page updates by itself.",
    running: "Being validated and scored… this page updates by itself.",
  };

  function isDone(status) {
    return status === "scored" || status === "failed" || status === "cancelled";
  }

  function show(panel, status) {
    panel.dataset.status = status;
    const badge = panel.querySelector("#status-text");
    badge.textContent = LABELS[status] || status;
    badge.className = "badge " + status;
    const at = isDone(status) ? 2 : ["queued", "running"].indexOf(status);
    panel.querySelectorAll(".steps li").forEach(function (li, i) {
      if (i < at) li.className = "done";
      else if (i > at) li.className = "";
      else if (!isDone(status)) li.className = "current";
      else li.className = status === "scored" ? "done" : "failed";
    });
    if (DETAILS[status]) panel.querySelector("#status-detail").textContent = DETAILS[status];
  }

  async function swapIn(panel, pageUrl, focus) {
    const response = await fetch(pageUrl, { credentials: "same-origin", headers: { Accept: "text/html" } });
    if (!response.ok) throw new Error("page " + response.status);
    const doc = new DOMParser().parseFromString(await response.text(), "text/html");
    const fresh = doc.getElementById("status-panel");
    if (!fresh) return;
    const node = document.importNode(fresh, true);
    panel.replaceWith(node);
    if (focus) {
      const heading = node.querySelector("h3");
      heading.setAttribute("tabindex", "-1");
      heading.focus();
    }
  }

  function follow(panel, statusUrl, pageUrl, options) {
    const interval = (options && options.interval) || 1000;
    const focus = Boolean(options && options.focus);
    let failures = 0;
    async function tick() {
      try {
        const response = await fetch(statusUrl, { credentials: "same-origin", headers: { Accept: "application/json" } });
        if (!response.ok) throw new Error("status " + response.status);
        const data = await response.json();
        failures = 0;
        show(panel, data.status);
        if (isDone(data.status)) {
          await swapIn(panel, pageUrl, focus);
          if (options && options.onDone) options.onDone(data.status);
          return;
        }
      } catch (error) {
        failures += 1;
        if (failures >= 30) {
          panel.querySelector("#status-detail").textContent =
            "Lost contact with the server. Reload the page to see the status.";
          return;
        }
      }
      setTimeout(tick, interval * Math.min(failures + 1, 5));
    }
    tick();
  }

  window.HeldoutStatus = { follow: follow, isDone: isDone };

  document.addEventListener("DOMContentLoaded", function () {
    const panel = document.getElementById("status-panel");
    if (panel && panel.dataset.statusUrl && !isDone(panel.dataset.status)) {
      follow(panel, panel.dataset.statusUrl, panel.dataset.pageUrl);
    }
  });
})();
